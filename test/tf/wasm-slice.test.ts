import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerWasmSlice, sliceKernel } from '../../stages/tf/wasm-slice.js';

beforeAll(async () => {
  registerWasmSlice();
  registerWasmSlice(); // idempotent
  await tf.setBackend('wasm');
});

/** tf.slice of a tensor with distinct values, on a backend, as a plain array. */
async function sliceOn(
  backend: string,
  shape: number[],
  dtype: 'float32' | 'int32' | 'bool',
  begin: number[],
  size: number[],
): Promise<number[]> {
  await tf.setBackend(backend);
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? (i % 3 === 0 ? 1 : 0) : i * 1.5 - 7));
  const x = tf.tensor(values, shape, dtype);
  const out = tf.slice(x, begin, size);
  const data = Array.from(await out.data());
  tf.dispose([x, out]);
  await tf.setBackend('wasm');
  return data;
}

describe('podium Slice on wasm', () => {
  it('is registered in place of the package kernel', () => {
    expect(tf.getKernel('Slice', 'wasm')?.kernelFunc).toBe(sliceKernel);
  });

  const cases: Array<[string, number[], number[], number[], 'float32' | 'int32' | 'bool']> = [
    ['ZeroPadding2D gradient: crop H and W, all channels', [2, 5, 5, 3], [0, 1, 1, 0], [2, 4, 4, 3], 'float32'],
    ['cut channels too', [2, 4, 5, 6], [1, 0, 2, 1], [1, 3, 2, 4], 'float32'],
    ['one contiguous block (leading axis only)', [4, 3, 2, 2], [1, 0, 0, 0], [2, 3, 2, 2], 'float32'],
    ['the whole tensor', [3, 4], [0, 0], [3, 4], 'float32'],
    ['size -1 to the end', [5, 6], [2, 1], [-1, -1], 'float32'],
    ['rank 1', [10], [3], [4], 'int32'],
    ['rank 3, int32', [3, 4, 5], [1, 1, 2], [2, 2, 3], 'int32'],
    ['bool bytes', [4, 5], [1, 2], [2, 3], 'bool'],
    ['empty', [4, 5], [1, 2], [0, 3], 'float32'],
  ];
  it.each(cases)('%s', async (_label, shape, begin, size, dtype) => {
    expect(await sliceOn('wasm', shape, dtype, begin, size)).toEqual(await sliceOn('cpu', shape, dtype, begin, size));
  });

  it('leaves strings to the package kernel', async () => {
    const x = tf.tensor(['a', 'b', 'c', 'd'], [4], 'string');
    const out = tf.slice(x, [1], [2]);
    expect(await out.data()).toEqual(['b', 'c']);
    tf.dispose([x, out]);
  });
});
