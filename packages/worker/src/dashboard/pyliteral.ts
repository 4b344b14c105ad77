/**
 * Read back a Python literal repr (`(2, 'x', {'k': None})`) as JSON values:
 * what Celery's events and `argsrepr` carry, so a task seen only through its
 * events can be re-sent with the same arguments. The subset of Python's
 * `ast.literal_eval` JSON can hold: numbers, strings, True/False/None, lists,
 * tuples and dicts with string keys. Anything else — a truncated repr
 * (`'…'`), an object's `<Foo at 0x…>`, a set, bytes — is refused with the
 * reason, never guessed.
 */
export class LiteralError extends Error {}

export function parsePyLiteral(text: string): unknown {
  const p = new Parser(text);
  const value = p.value();
  p.ws();
  if (p.i < text.length) p.fail('unexpected text after the value');
  return value;
}

const ESCAPES: Readonly<Record<string, string>> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0', a: '\x07', b: '\b', f: '\f', v: '\v', '\n': '' };

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  fail(why: string): never {
    throw new LiteralError(`${why} at character ${this.i + 1}`);
  }

  ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }

  value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === undefined) this.fail('unexpected end');
    if (c === '(') return this.seq(')');
    if (c === '[') return this.seq(']');
    if (c === '{') return this.dict();
    if (c === "'" || c === '"') return this.str();
    const word = /^(True|False|None)\b/.exec(this.s.slice(this.i));
    if (word) {
      this.i += word[0].length;
      return word[0] === 'True' ? true : word[0] === 'False' ? false : null;
    }
    const number = /^-?(\d+\.?\d*(e[-+]?\d+)?|\.\d+(e[-+]?\d+)?|inf|nan)/i.exec(this.s.slice(this.i));
    if (number) {
      this.i += number[0].length;
      const n = Number(number[0]);
      if (!Number.isFinite(n)) this.fail('inf and nan have no JSON form');
      return n;
    }
    this.fail(`not a literal (${JSON.stringify(this.s.slice(this.i, this.i + 12))})`);
  }

  /** A tuple or a list, both as an array (`(x,)` and `[x]` alike). */
  private seq(close: string): unknown[] {
    this.i++;
    const out: unknown[] = [];
    for (;;) {
      this.ws();
      if (this.s[this.i] === close) {
        this.i++;
        return out;
      }
      out.push(this.value());
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== close) this.fail(`expected , or ${close}`);
    }
  }

  private dict(): Record<string, unknown> {
    this.i++;
    const out: Record<string, unknown> = {};
    for (;;) {
      this.ws();
      if (this.s[this.i] === '}') {
        this.i++;
        return out;
      }
      const key = this.value();
      if (typeof key !== 'string') this.fail('dict keys must be strings to become JSON');
      this.ws();
      if (this.s[this.i] !== ':') this.fail('expected :');
      this.i++;
      const v = this.value();
      // Own data property even for `__proto__`: the object never gains a prototype from input.
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== '}') this.fail('expected , or }');
    }
  }

  private str(): string {
    const quote = this.s[this.i]!;
    this.i++;
    let out = '';
    for (;;) {
      const c = this.s[this.i];
      if (c === undefined) this.fail('unterminated string');
      this.i++;
      if (c === quote) break;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.s[this.i];
      if (e === undefined) this.fail('unterminated string');
      this.i++;
      if (Object.hasOwn(ESCAPES, e)) out += ESCAPES[e];
      else if (e === 'x' || e === 'u' || e === 'U') {
        const len = e === 'x' ? 2 : e === 'u' ? 4 : 8;
        const hex = this.s.slice(this.i, this.i + len);
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) this.fail(`bad \\${e} escape`);
        out += String.fromCodePoint(parseInt(hex, 16));
        this.i += len;
      } else out += `\\${e}`;
    }
    // Adjacent literals concatenate, as in Python ('a' 'b').
    this.ws();
    const next = this.s[this.i];
    return next === "'" || next === '"' ? out + this.str() : out;
  }
}
