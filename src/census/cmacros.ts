// The census's side of the preprocessor: aliases a file declares (weak_alias, versioned_symbol ...), the macros its
// directives #define, and the expansion of a name through them (glibc's CONCAT/## name templates).

/** Aliases declared in a file: weak_alias/strong_alias/versioned_symbol/compat_symbol (from -> public names). */
export function aliases(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (a: string, b: string) => out.set(a, [...(out.get(a) ?? []), b]);
  for (const m of text.matchAll(/\b(?:weak_alias|strong_alias|libc_ifunc_redirected|hidden_ver|weak_hidden_alias)\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)/g)) add(m[1], m[2]);
  for (const m of text.matchAll(/\b(?:versioned_symbol|compat_symbol)\s*\(\s*\w+\s*,\s*(\w+)\s*,\s*(\w+)\s*,/g)) add(m[1], m[2]);
  return out;
}

interface Macro {
  params: string[] | null;
  body: string;
}

/** Object-like and function-like macros #defined in directives (the last definition wins). */
export function macros(directives: { text: string }[]): Map<string, Macro> {
  const out = new Map<string, Macro>();
  // the one condition evaluated: glibc's _LIBC is defined (intl/ defines libintl_* names only when it is not)
  const stack: (boolean | null)[] = [];
  for (const d of directives) {
    const c = /^\s*#\s*(ifdef|ifndef|if|elif|else|endif)\b\s*(.*)$/s.exec(d.text);
    if (c) {
      const cond = c[2].trim();
      const libc = /^(?:defined\s*\(?\s*)?_LIBC\s*\)?$/.test(cond) ? true : /^!\s*defined\s*\(?\s*_LIBC\s*\)?$/.test(cond) ? false : null;
      if (c[1] === 'ifdef') stack.push(cond === '_LIBC' ? true : null);
      else if (c[1] === 'ifndef') stack.push(cond === '_LIBC' ? false : null);
      else if (c[1] === 'if') stack.push(libc);
      else if (c[1] === 'elif') stack[stack.length - 1] = null;
      else if (c[1] === 'else') stack[stack.length - 1] = stack[stack.length - 1] == null ? null : !stack[stack.length - 1];
      else stack.pop();
      continue;
    }
    if (stack.includes(false)) continue;
    const m = /^\s*#\s*define\s+([A-Za-z_]\w*)(\(([^)]*)\))?\s*(.*)$/s.exec(d.text);
    if (!m) continue;
    out.set(m[1], { params: m[2] ? m[3].split(',').map((x) => x.trim()).filter(Boolean) : null, body: m[4].trim() });
  }
  return out;
}

/** Expand a (function-name) expression with the given macros: enough for glibc's CONCAT/## name templates. */
export function expandName(expr: string, defs: Map<string, Macro>, depth = 0): string {
  if (depth > 12) return expr;
  let out = '';
  let i = 0;
  let changed = false;
  while (i < expr.length) {
    const m = /^[A-Za-z_]\w*/.exec(expr.slice(i));
    if (!m) {
      out += expr[i++];
      continue;
    }
    const name = m[0];
    const def = defs.get(name);
    i += name.length;
    if (!def) {
      out += name;
      continue;
    }
    if (!def.params) {
      out += def.body;
      changed = true;
      continue;
    }
    const rest = expr.slice(i);
    const open = /^\s*\(/.exec(rest);
    if (!open) {
      out += name;
      continue;
    }
    // collect the arguments
    let j = i + open[0].length;
    let d = 1;
    const args: string[] = [];
    let cur = '';
    for (; j < expr.length && d > 0; j++) {
      const c = expr[j];
      if (c === '(') d++;
      else if (c === ')') {
        d--;
        if (!d) break;
      }
      if (c === ',' && d === 1) {
        args.push(cur.trim());
        cur = '';
      } else cur += c;
    }
    args.push(cur.trim());
    i = j + 1;
    let body = def.body;
    def.params.forEach((p, k) => {
      const arg = args[k] ?? '';
      // operands of ## are not expanded first; the others are
      body = body.replace(new RegExp(`(##\\s*)\\b${p}\\b|\\b${p}\\b(\\s*##)`, 'g'), (_s, a, b) => (a ? a + arg : arg + b));
      body = body.replace(new RegExp(`(?<!##\\s*)\\b${p}\\b(?!\\s*##)`, 'g'), expandName(arg, defs, depth + 1));
    });
    body = body.replace(/\s*##\s*/g, '');
    out += body;
    changed = true;
  }
  return changed ? expandName(out, defs, depth + 1) : out;
}
