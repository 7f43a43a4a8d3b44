/** What changed about an account, as it is now: `sessionsEnded` lists revoked sessions (all but `kept` when `kept` is set). */
export type AccountChange =
  | { kind: 'rights'; userId: number; isAdmin: boolean; isTrusted: boolean; isActive: boolean }
  | { kind: 'sessions-ended'; userId: number; sessionId?: string; keep?: string };

export type AccountListener = (change: AccountChange) => void;

/**
 * In-process notice of account changes, published after the commit, so that this replica's open
 * WebSocket connections lose what they relied on before the mutation answers. Other replicas learn it
 * from their periodic session check (WS_SESSION_CHECK_SECONDS), which reads the database.
 */
export class AccountEvents {
  private readonly listeners = new Set<AccountListener>();

  publish(change: AccountChange): void {
    for (const l of this.listeners) l(change);
  }

  listen(listener: AccountListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
