// The training options of the recipe that the benches and the training tests share:
// plain SGD, momentum 0.9, weight decay 1e-4, no label smoothing, every layer trainable, and one
// constant learning rate (no steps). The caller adds what differs: batch size, lr, seed, data.
export function sgdRecipeOptions(rest) {
  return {
    lrSteps: [],
    momentum: 0.9,
    weightDecay: 1e-4,
    optimizer: 'sgd',
    labelSmoothing: 0,
    trainable: 'all',
    ...rest,
  };
}
