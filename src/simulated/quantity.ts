/**
 * Kubernetes resource quantities ("3Gi", "512M", "100m", "1e9"), as much of them as the simulated cluster
 * needs: parsing, comparing, and printing in the canonical form the API and KubeVirt's messages use.
 * Written after the rules of kubernetes staging/src/k8s.io/apimachinery/pkg/api/resource/quantity.go
 * (suffixes, the three formats, CanonicalizeBytes); numbers are JavaScript doubles, which is exact for
 * the sizes a lab uses.
 */

export type QuantityFormat = 'BinarySI' | 'DecimalSI' | 'DecimalExponent';

export interface Quantity {
  /** In base units (bytes, cores), possibly fractional. */
  value: number;
  format: QuantityFormat;
}

// The pattern the CRD schema of KubeVirt's VirtualMachineInstance puts on every quantity
// (kubevirt/kubevirt pkg/virt-operator/resource/generate/components/validations_generated.go).
export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';
const QUANTITY_RE = new RegExp(QUANTITY_PATTERN);

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** Parses a quantity given as a string or a JSON number; undefined when it is not one. */
export function parseQuantity(input: unknown): Quantity | undefined {
  if (typeof input === 'number' && Number.isFinite(input)) return { value: input, format: 'DecimalSI' };
  if (typeof input !== 'string' || !QUANTITY_RE.test(input)) return undefined;
  const m = /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$/.exec(input);
  if (!m) return undefined;
  const [, number, suffix] = m;
  const mantissa = Number(number);
  if (suffix in BINARY) return { value: mantissa * BINARY[suffix], format: 'BinarySI' };
  if (suffix in DECIMAL) return { value: mantissa * DECIMAL[suffix], format: 'DecimalSI' };
  const exp = /^[eE]([+-]?[0-9.]+)$/.exec(suffix);
  if (exp) return { value: mantissa * 10 ** Number(exp[1]), format: 'DecimalExponent' };
  return undefined;
}

/** The integer value rounded up, as Quantity.Value() gives it. */
export function ceilValue(q: Quantity): number {
  return Math.ceil(q.value - 1e-9);
}

const BINARY_SUFFIXES = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
const DECIMAL_SUFFIXES: Array<[number, string]> = [[18, 'E'], [15, 'P'], [12, 'T'], [9, 'G'], [6, 'M'], [3, 'k']];

/**
 * The canonical string of a quantity (what Quantity.String() prints): the largest suffix that keeps the
 * number whole, binary values below 1024 printed in decimal, fractions in milli/micro/nano units.
 */
export function formatQuantity(q: Quantity): string {
  let format = q.format;
  const v = q.value;
  if (!Number.isInteger(v)) {
    for (const [scale, suffix] of [[1e3, 'm'], [1e6, 'u'], [1e9, 'n']] as const) {
      const scaled = v * scale;
      if (Math.abs(scaled - Math.round(scaled)) < 1e-6) return `${Math.round(scaled)}${suffix}`;
    }
    return `${Math.ceil(v * 1e9)}n`;
  }
  if (format === 'BinarySI' && Math.abs(v) < 1024) format = 'DecimalSI';
  if (format === 'BinarySI') {
    for (let i = BINARY_SUFFIXES.length; i >= 1; i--) {
      const unit = 2 ** (10 * i);
      if (v % unit === 0) return `${v / unit}${BINARY_SUFFIXES[i - 1]}`;
    }
    return String(v);
  }
  for (const [exp, suffix] of DECIMAL_SUFFIXES) {
    const unit = 10 ** exp;
    if (v !== 0 && v % unit === 0) return format === 'DecimalExponent' ? `${v / unit}e${exp}` : `${v / unit}${suffix}`;
  }
  return String(v);
}

/** Bytes as a binary-suffixed quantity, e.g. 3_481_272_320 -> "3320Mi". */
export function bytesQuantity(bytes: number): string {
  return formatQuantity({ value: Math.ceil(bytes), format: 'BinarySI' });
}

/** CPU cores as a quantity, in millicores when fractional: 0.3 -> "300m", 2 -> "2". */
export function cpuQuantity(cores: number): string {
  const milli = Math.ceil(cores * 1000 - 1e-6);
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}
