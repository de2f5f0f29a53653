/** The scene classes: their names, order, and the recipe that paints each. */
import type { Canvas } from './paint.js';
import type { Rng } from '../random.js';
import { sceneForest, sceneGlacier, sceneMountain, sceneSea } from './scenes-classic.js';
import { sceneBuildings, sceneStreet } from './scenes-city.js';
import { sceneBeach, sceneCanyon, sceneDesert, sceneField, sceneLake, sceneSky } from './scenes-extra.js';

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
export const SCENES: readonly SceneDef[] = [
  { name: 'buildings', draw: sceneBuildings },
  { name: 'forest', draw: sceneForest },
  { name: 'glacier', draw: sceneGlacier },
  { name: 'mountain', draw: sceneMountain },
  { name: 'sea', draw: sceneSea },
  { name: 'street', draw: sceneStreet },
  { name: 'desert', draw: sceneDesert },
  { name: 'field', draw: sceneField },
  { name: 'lake', draw: sceneLake },
  { name: 'beach', draw: sceneBeach },
  { name: 'sky', draw: sceneSky },
  { name: 'canyon', draw: sceneCanyon },
];

export const SYNTHETIC_CLASS_NAMES: readonly string[] = Object.freeze(SCENES.map((s) => s.name));
