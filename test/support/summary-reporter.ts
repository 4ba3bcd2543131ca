/**
 * Prints one plain closing line, `tests: N passed, N failed, N skipped`, after the run, so a
 * reader (or CI) that does not parse vitest's own summary still sees what ran. "failed" counts
 * failed tests *and* every failure outside a test: a suite whose file or hook failed (its tests
 * then never ran, and would otherwise only show up as skipped) and unhandled errors. A line
 * naming those failures comes just before it.
 */
import type { SerializedError } from 'vitest';
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
  ): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const brokenSuites: string[] = [];
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      if (mod.errors().length > 0) brokenSuites.push(mod.moduleId);
      for (const suite of mod.children.allSuites()) {
        if (suite.errors().length > 0) brokenSuites.push(`${mod.moduleId} > ${suite.fullName}`);
      }
    }
    const outside = brokenSuites.length + unhandledErrors.length;
    if (outside > 0) {
      process.stdout.write(
        `\nfailures outside tests: ${brokenSuites.length} failed suite(s)` +
          `${brokenSuites.map((s) => `\n  ${s}`).join('')}` +
          `\n  ${unhandledErrors.length} unhandled error(s)\n`,
      );
    }
    process.stdout.write(
      `\ntests: ${passed} passed, ${failed + outside} failed, ${skipped} skipped\n`,
    );
  }
}
