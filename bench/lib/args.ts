/** `--name value` and `--flag` arguments of the bench scripts; unknown names are an error that lists the known ones. */
export function parseArgs<T extends Record<string, string | number | boolean>>(
  argv: readonly string[],
  defaults: T,
): T {
  const out: Record<string, string | number | boolean> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const name = arg.replace(/^--/, '');
    if (!arg.startsWith('--') || !(name in defaults)) {
      const known = Object.keys(defaults).map((k) => `--${k}`);
      throw new Error(`unknown argument '${arg}'; expected one of ${known.join(', ')}`);
    }
    const def = defaults[name];
    if (typeof def === 'boolean') {
      out[name] = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`--${name}: expected a value`);
    if (typeof def === 'number') {
      const n = Number(value.replace(/_/g, ''));
      if (!Number.isFinite(n) || n < 0)
        throw new Error(`--${name}: expected a non-negative number, got '${value}'`);
      out[name] = n;
    } else out[name] = value;
  }
  return out as T;
}
