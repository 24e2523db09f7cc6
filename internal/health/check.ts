/** One line of /health. `check` resolves when healthy and throws with the issue otherwise. */
export interface HealthCheck {
  name: string;
  check(): Promise<void>;
}
