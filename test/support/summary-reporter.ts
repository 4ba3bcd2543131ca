/**
 * Prints one plain closing line after the run,
 * `tests: N passed, N failed, N skipped; suites: N passed, N failed`, so a reader (or CI) that
 * does not parse vitest's own summary still sees what ran. A suite is a test file: it failed when
 * a test in it failed or the file or one of its hooks did (its tests then never ran, and would
 * otherwise only show up as skipped). The tests' "failed" also counts every failure outside a
 * test (such a file, such a hook, an unhandled error). A line naming those comes just before it.
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
    let failedFiles = 0;
    for (const mod of testModules) {
      let fileFailed = mod.errors().length > 0 || mod.state() === 'failed';
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') {
          failed++;
          fileFailed = true;
        } else skipped++;
      }
      if (fileFailed) failedFiles++;
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
      `\ntests: ${passed} passed, ${failed + outside} failed, ${skipped} skipped; ` +
        `suites: ${testModules.length - failedFiles} passed, ${failedFiles} failed\n`,
    );
  }
}
