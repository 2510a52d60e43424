/**
 * Where an ACME issuer publishes DNS-01 answers. One implementation per DNS host (challtestsrv for tests;
 * Azure DNS, Route 53, ... for production), chosen by configuration.
 */
export interface DnsProvider {
  /**
   * Publish a TXT record `value` at `fqdn` (e.g. `_acme-challenge.app.example.com`, no trailing dot needed).
   * Idempotent: presenting the same value twice is not an error. Other values at that name stay.
   */
  present(fqdn: string, value: string): Promise<void>;
  /** Remove that TXT value again. Idempotent: a record that is already gone is not an error. */
  cleanup(fqdn: string, value: string): Promise<void>;
  /**
   * The zone's authoritative name servers (host names or IPs, optionally `:port`), where the propagation
   * check looks for the TXT record when no resolvers are configured.
   */
  authoritativeNameservers?(fqdn: string): Promise<string[]>;
}
