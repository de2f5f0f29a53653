// `fuse`: combines several Predictions (epochs of one run, matrix points, architectures) into one.
// Every output named predictions* of every input stage is one member, `${stageId}:${output}` —
// or, with `members: "candidates"` (the default), every candidate* output where a stage has them
// (multicrop-predict: one per checkpoint, crop set and scale), so that selection can leave out a
// scale that hurts. The fitted methods never end below their best member on the fit split.
// The methods (mean, logit-mean, geometric, weighted, greedy) and the held-out guard against
// fitting val by luck are data/fusion.ts's; this file reads the members and writes the results.
import type { FromSchema } from 'json-schema-to-ts';

import { defineStage, InputError, type InputArtifact, type JsonSchema } from './contract.js';
import { checkAgreement, fuseMembers, type Member } from './data/fusion.js';
import { CANDIDATE_PREFIX, decodePredictions, encodePredictions, PREDICTIONS_PREFIX } from './data/predictions.js';

/** The format of this kind's `report` output, for whatever reads the artifact (the HTML report does). */
export type { FuseReport } from './data/fusion.js';

const params = {
  type: 'object',
  additionalProperties: false,
  properties: {
    method: {
      enum: ['mean', 'logit-mean', 'geometric', 'weighted', 'greedy'],
      default: 'greedy',
      description:
        'mean of probabilities, mean of log-odds, normalised geometric mean, weighted mean fitted on the fit split, or greedy forward selection with replacement.',
    },
    members: {
      enum: ['candidates', 'predictions'],
      default: 'candidates',
      description:
        "candidates: every candidate* output of a stage that has them (multicrop-predict's per crops and scale), else its predictions*; predictions: only predictions* outputs (one averaged prediction per checkpoint).",
    },
    metric: {
      enum: ['top1', 'top3', 'logloss'],
      default: 'top1',
      description: 'What weighted and greedy optimise on the fit part.',
    },
    fitSplit: {
      type: 'string',
      minLength: 1,
      default: 'val',
      description: 'The labelled split weights are fitted on and scores reported for.',
    },
    holdout: {
      type: 'number',
      minimum: 0,
      exclusiveMaximum: 1,
      default: 0.5,
      description:
        'Fraction of the fit split kept out of fitting (chosen by a hash of seed and image id); its score shows whether the fit generalises.',
    },
    greedy: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        init: { type: 'integer', minimum: 1, default: 1, description: 'Start from this many best members.' },
        maxRounds: { type: 'integer', minimum: 0, default: 20, description: 'At most this many additions.' },
        bagging: {
          oneOf: [
            { type: 'null' },
            {
              type: 'object',
              additionalProperties: false,
              required: ['bags', 'fraction'],
              properties: {
                bags: { type: 'integer', minimum: 1 },
                fraction: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
              },
            },
          ],
          default: null,
          description: 'Repeat the selection on `bags` random subsets holding `fraction` of the members and average.',
        },
      },
    },
    weighted: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxRounds: { type: 'integer', minimum: 0, default: 30, description: 'At most this many coordinate moves.' },
      },
    },
  },
} as const satisfies JsonSchema;

/** The params after ajv filled in the schema's defaults (every one is set by then). */
export type FuseParams = FromSchema<typeof params>;

export const fuse = defineStage<FuseParams>({
  name: 'fuse',
  version: 3, // 2: bagging draws from the shared Rng; 3: members may be candidates, and a fitted fusion falls back to its best member
  description:
    'Fuse several prediction artifacts (mean, logit mean, geometric, fitted weights, or Caruana greedy selection), with a held-out check.',
  params,
  inputs: {
    predictions: { many: true, required: true, description: 'stages whose predictions* outputs are the members' },
  },
  isolate: false,

  async run(ctx, p) {
    const raw = ctx.inputs.predictions;
    const arts = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
    const members = loadMembers(arts, (d) => ctx.store.getBlob(d), p.members);
    const { predictions, report } = fuseMembers(members, p, ctx.seed);
    const f = report.fused;
    ctx.log(
      `${p.method} over ${members.length} members: chose ${Object.entries(report.weights)
        .map(([n, w]) => `${n}×${w.toFixed(3)}`)
        .join(', ')}`,
    );
    if (report.fallback)
      ctx.log(
        `the fitted fusion scored ${fmt(report.fallback.fusedScore)} on ${p.fitSplit}, below ${report.fallback.member} alone (${fmt(report.fallback.memberScore)}): kept that member`,
      );
    ctx.log(
      `fused ${p.fitSplit} top1 ${fmt(f.val.top1)} (fit ${fmt(f.fit.top1)}, held out ${fmt(f.holdout.top1)}), top3 ${fmt(f.val.top3)}`,
    );
    const metrics: Record<string, number> = {};
    if (f.val.top1 !== null) metrics.top1 = f.val.top1;
    if (f.val.top3 !== null) metrics.top3 = f.val.top3;
    if (f.val.logloss !== null) metrics.logloss = f.val.logloss;
    if (f.fit.top1 !== null) metrics.fitTop1 = f.fit.top1;
    if (f.holdout.top1 !== null) metrics.holdoutTop1 = f.holdout.top1;
    const bestMember = Math.max(...report.members.map((m) => m.val.top1 ?? -1));
    if (bestMember >= 0) metrics.bestMemberTop1 = bestMember;
    return {
      outputs: {
        predictions: await ctx.store.putBlob(encodePredictions(predictions)),
        report: await ctx.store.putBlob(Buffer.from(`${JSON.stringify(report, null, 2)}\n`)),
      },
      metrics,
    };
  },
});

function fmt(x: number | null): string {
  return x === null ? '-' : x.toFixed(4);
}

/**
 * Every predictions* output of every input stage (outputs in name order) or, for `candidates`,
 * its candidate* outputs where it has any; checked for agreement.
 */
export function loadMembers(
  arts: InputArtifact[],
  getBlob: (d: InputArtifact['outputs'][string]) => Buffer | undefined,
  use: FuseParams['members'] = 'predictions',
): Member[] {
  const members: Member[] = [];
  for (const a of arts) {
    const named = (prefix: string): string[] =>
      Object.keys(a.outputs)
        .filter((n) => n.startsWith(prefix))
        .sort();
    const candidates = use === 'candidates' ? named(CANDIDATE_PREFIX) : [];
    const names = candidates.length ? candidates : named(PREDICTIONS_PREFIX);
    if (!names.length)
      throw new InputError(
        `input stage "${a.stageId}" has no predictions output (outputs: ${Object.keys(a.outputs).join(', ') || 'none'})`,
      );
    for (const n of names) {
      const bytes = getBlob(a.outputs[n]!);
      if (!bytes) throw new InputError(`predictions "${a.stageId}:${n}" are missing from the cache`);
      members.push({
        name: `${a.stageId}:${n}`,
        predictions: decodePredictions(bytes, `predictions "${a.stageId}:${n}"`),
      });
    }
  }
  checkAgreement(members);
  return members;
}
