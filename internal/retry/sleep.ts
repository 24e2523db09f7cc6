/** A wait between retries that shutdown (or news that the other side is back) can cut short. */
export interface Sleep {
  /** true when the wait ran its course, false when it was cut short. */
  readonly done: Promise<boolean>;
  cancel(): void;
}

/** `unref`: the wait alone does not keep the process running (a back-off must never hold up an exit). */
export function sleep(ms: number, opts: { unref?: boolean } = {}): Sleep {
  let cancel!: () => void;
  const done = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(true), ms);
    if (opts.unref) timer.unref();
    cancel = () => {
      clearTimeout(timer);
      resolve(false);
    };
  });
  return { done, cancel };
}
