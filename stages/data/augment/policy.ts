// What augmentation to apply: the policy type, MXNet's levels as defaults, and validation.
// Units and MXNet semantics of each field are described in ./index.ts.

export interface AugmentPolicy {
  /** Output size (square), e.g. 224. */
  crop: number;
  /** Random crop position (MXNet level 1); false → centre crop. Ignored with randomResizedCrop. */
  randomCrop: boolean;
  /** Random horizontal flip with p = 0.5. */
  mirror: boolean;
  /**
   * Inception/DPN-style random-resized-crop: a region with area fraction uniform in `area` and
   * aspect ratio (width/height) log-uniform in `ratio` is resized to crop×crop (torchvision
   * semantics: 10 attempts, then a centre crop clamped to the ratio range). Typical: area
   * [0.08, 1], ratio [3/4, 4/3]. When set, it replaces randomCrop and scaleJitter.
   */
  randomResizedCrop?: { area: [number, number]; ratio: [number, number] } | null;
  /** Scale the whole image by a factor uniform in [lo, hi] before cropping (MXNet min/max_random_scale). */
  scaleJitter?: [number, number] | null;
  /** Max hue shift in OpenCV 8-bit HLS units (1 unit = 2°). MXNet level 2: 36 (= ±72°). */
  hue: number;
  /** Max additive saturation shift on the 0..255 HLS scale. MXNet level 2: 50. */
  saturation: number;
  /** Max additive lightness shift on the 0..255 HLS scale. MXNet level 2: 50. */
  lightness: number;
  /** Max rotation in degrees, uniform in ±rotate (MXNet level 3: 10). */
  rotate: number;
  /** Max shear ratio m in (x, y) → (x + m·y, y), uniform in ±shear (MXNet level 3: 0.1). */
  shear: number;
  /** Max aspect-ratio change: width/height scaled by r uniform in [1 − aspect, 1 + aspect] (0.25). */
  aspect: number;
  /** Fill value for pixels outside the source, on the 0..255 scale (MXNet: 127). */
  fill: number;
}

export type AugmentLevel = 0 | 1 | 2 | 3;

const POLICY_KEYS: ReadonlySet<string> = new Set<keyof AugmentPolicy>([
  'crop',
  'randomCrop',
  'mirror',
  'randomResizedCrop',
  'scaleJitter',
  'hue',
  'saturation',
  'lightness',
  'rotate',
  'shear',
  'aspect',
  'fill',
]);

/**
 * MXNet's `set_data_aug_level` as a policy. The level only supplies defaults: any value present in
 * `overrides` (not undefined) wins, including `null` to switch off an optional transform.
 */
export function policyForLevel(
  level: AugmentLevel,
  crop: number,
  overrides: Partial<AugmentPolicy> = {},
): AugmentPolicy {
  if (level !== 0 && level !== 1 && level !== 2 && level !== 3) {
    throw new RangeError(`augmentation level must be 0, 1, 2 or 3, got ${String(level)}`);
  }
  const base: AugmentPolicy = {
    crop,
    randomCrop: level >= 1,
    mirror: level >= 1,
    randomResizedCrop: null,
    scaleJitter: null,
    hue: level >= 2 ? 36 : 0,
    saturation: level >= 2 ? 50 : 0,
    lightness: level >= 2 ? 50 : 0,
    rotate: level >= 3 ? 10 : 0,
    shear: level >= 3 ? 0.1 : 0,
    aspect: level >= 3 ? 0.25 : 0,
    fill: 127,
  };
  const explicit: Partial<AugmentPolicy> = {};
  for (const [key, value] of Object.entries(overrides)) {
    // Overrides often come from JSON params; a misspelt key silently doing nothing is worse than an error.
    if (!POLICY_KEYS.has(key)) throw new RangeError(`unknown augmentation policy key "${key}"`);
    // `{ hue: undefined }` (e.g. an optional param that was not given) must not erase the level default.
    if (value !== undefined) (explicit as Record<string, unknown>)[key] = value;
  }
  const policy: AugmentPolicy = { ...base, ...explicit };
  validatePolicy(policy);
  return policy;
}

/** Throws a RangeError naming the first invalid field. Cheap; called once per sample/batch. */
export function validatePolicy(p: AugmentPolicy): void {
  const bad = (msg: string): never => {
    throw new RangeError(`invalid augmentation policy: ${msg}`);
  };
  if (!Number.isInteger(p.crop) || p.crop < 1) bad(`crop must be a positive integer, got ${p.crop}`);
  for (const k of ['hue', 'saturation', 'lightness', 'rotate', 'shear', 'aspect'] as const) {
    if (!Number.isFinite(p[k]) || p[k] < 0) bad(`${k} must be a finite number ≥ 0, got ${p[k]}`);
  }
  if (p.aspect >= 1) bad(`aspect must be < 1 (the ratio 1 − aspect must stay positive), got ${p.aspect}`);
  if (p.shear >= 1) bad(`shear must be < 1, got ${p.shear}`);
  if (!Number.isFinite(p.fill)) bad(`fill must be finite, got ${p.fill}`);
  const sj = p.scaleJitter;
  if (sj != null) {
    if (!(sj[0] > 0 && sj[1] >= sj[0] && Number.isFinite(sj[1])))
      bad(`scaleJitter must be 0 < lo ≤ hi, got [${sj.join(', ')}]`);
  }
  const rrc = p.randomResizedCrop;
  if (rrc != null) {
    const [a0, a1] = rrc.area;
    const [r0, r1] = rrc.ratio;
    if (!(a0 > 0 && a1 >= a0 && a1 <= 1)) bad(`randomResizedCrop.area must be 0 < lo ≤ hi ≤ 1, got [${a0}, ${a1}]`);
    if (!(r0 > 0 && r1 >= r0 && Number.isFinite(r1)))
      bad(`randomResizedCrop.ratio must be 0 < lo ≤ hi, got [${r0}, ${r1}]`);
  }
}
