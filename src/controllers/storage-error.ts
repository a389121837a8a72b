// What a storage implementation throws to tell a loop how to go on: a kind the loop decides the retry by, a reason
// for the event, and a message shown in events and logs (so the storage side guarantees it carries no secret).
export class StorageError<Kind extends string> extends Error {
  constructor(
    readonly kind: Kind,
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
