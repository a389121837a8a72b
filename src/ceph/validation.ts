/** A bad option, caught before any native call. Names the field and what it accepts. */
export class ValidationError extends TypeError {
  constructor(readonly field: string, readonly allowed: string, readonly problem: string) {
    super(`${field}: ${problem}; allowed: ${allowed}`);
    this.name = 'ValidationError';
  }
}
