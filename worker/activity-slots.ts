/**
 * How many activities one Worker runs at once (Temporal's `maxConcurrentActivityTaskExecutions`; the SDK's default
 * is 100). Certflow's activities mostly wait (the CA, the vault, a probe, an nginx batch), and a wave's re-binds wait
 * together: every certificate's `syncBindings` of one nginx joins the server's next batch and holds its slot until
 * that batch has reloaded and probed. With 100 slots a wave of 1,000 on one nginx went 100 certificates a batch, and
 * while a batch ran no other step of any renewal could start (bench/results/wave-1000-before-slots.json: 4.2 min,
 * the first renewal done after 85 s). CPU-heavy work inside activities is bounded where it happens (mapLimit).
 */
export const DEFAULT_MAX_CONCURRENT_ACTIVITIES = 1000;
