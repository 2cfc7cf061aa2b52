/** Every problem found in a set of options at once, each naming its key; the CLI prints them and exits 2. */
export class OptionsError extends Error {
  override readonly name = 'OptionsError';
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid options:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}
