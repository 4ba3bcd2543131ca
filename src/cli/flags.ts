/** A flag as mri (under sade) parses it: a string, a number (all digits), a boolean, or a repeated one. */
export type FlagValue = string | number | boolean | string[] | undefined;

/** Parsed flags; `_` holds the positional arguments. */
export type Flags = Record<string, FlagValue> & { _: string[] };
