/** The scene classes: their names, order, and the recipe that paints each. */
import type { Canvas } from './paint.js';
import type { Rng } from '../random.js';
import { CLASSIC_SCENES } from './scenes-classic.js';
import { CITY_SCENES } from './scenes-city.js';
import { EXTRA_SCENES } from './scenes-extra.js';

interface SceneDef {
  name: string;
  draw: (c: Canvas, rng: Rng) => void;
}

/**
 * Order matters: `classes: n` uses the first n. The first six mirror the classic Intel scene
 * benchmark (buildings, forest, glacier, mountain, sea, street), including its hard pairs
 * (glacier/mountain, buildings/street, sea/glacier). New classes must be appended, never
 * inserted, or seeds and file contents of existing datasets change.
 */
const INTEL_SIX = ['buildings', 'forest', 'glacier', 'mountain', 'sea', 'street'] as const;
const APPENDED = ['desert', 'field', 'lake', 'beach', 'sky', 'canyon'] as const;

/** Every class's recipe by name; a name above without one does not compile. */
const RECIPES = { ...CLASSIC_SCENES, ...CITY_SCENES, ...EXTRA_SCENES };

export const SCENES: readonly SceneDef[] = [...INTEL_SIX, ...APPENDED].map((name) => ({ name, draw: RECIPES[name] }));

export const SYNTHETIC_CLASS_NAMES: readonly string[] = Object.freeze(SCENES.map((s) => s.name));
