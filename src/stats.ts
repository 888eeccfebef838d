// Statistics a user can trust: a failure rate with a 95% Wilson score interval, and the rule of three
// for what a clean run could still have missed.

const Z95 = 1.959963984540054;

/** 95% Wilson score interval for k failures in n trials. */
export function wilson(k: number, n: number, z = Z95): [number, number] {
  if (n <= 0) return [0, 1];
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return [k === 0 ? 0 : Math.max(0, centre - half), k === n ? 1 : Math.min(1, centre + half)];
}

/** With 0 failures in n trials, rates above 3/n are excluded at 95% confidence. */
export function ruleOfThree(n: number): number | null {
  return n > 0 ? Math.min(1, 3 / n) : null;
}

export function percentile(sorted: number[], q: number): number | null {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export function fmtRate(r: number): string {
  if (r === 0) return '0';
  if (r >= 0.01) return (r * 100).toFixed(r >= 0.1 ? 0 : 1) + '%';
  return (r * 100).toPrecision(2) + '%';
}
