// What the runner needs to fence a deposed leader before this replica acts. A leader that was paused past its lease
// and then resumed can still have storage calls in flight inside the storage library, where no lease check reaches
// them; so each leader publishes, in the Lease's holder data, how to cut off its storage clients, and a new leader
// cuts them off (in Ceph: blocklists them) before any loop starts. The storage side implements it (src/rbd).

export interface Fencer {
  /**
   * Cuts off every storage client that previousHolderData (what the previous holder published) lists. Resolves
   * only when each is fenced or provably gone; rejects otherwise, and the runner tries again with backoff without
   * acting meanwhile. Must honour signal (the lease was lost, or shutdown).
   */
  fence(previousHolderData: string, signal: AbortSignal): Promise<void>;
}

export interface Fencing {
  fencer: Fencer;
  /** The Lease annotation that carries the holder data. */
  holderDataAnnotation: string;
}
