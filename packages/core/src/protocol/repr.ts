/**
 * A Python-style `repr` for `argsrepr` / `kwargsrepr`, so Flower and
 * `celery inspect` show celeriac's tasks the way they show Python's.
 */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(value);
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(', ')}}`;
  }
  return pyRepr(typeof value === 'bigint' ? value.toString() : typeof value);
}

/** Positional args as a Python tuple: `(1, 1)`, `(1,)`, `()`. */
export function pyTupleRepr(args: readonly unknown[]): string {
  return args.length === 1 ? `(${pyRepr(args[0])},)` : `(${args.map(pyRepr).join(', ')})`;
}
