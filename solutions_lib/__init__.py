"""Reference implementations of every formula of the course, in plain numpy.

Only hidden tests and instructor tooling import this package; students never get it.

Modules: ``activations`` (f and f' of step, sign, sigmoid, tanh, ReLU, leaky ReLU, ELU,
softmax), ``losses`` (MSE, cross-entropies, L1/L2), ``layers`` (dense, dropout),
``denoising`` (the notes' cosine denoiser, Wolter II, eqs. (15)–(17)), ``network`` (an MLP: forward,
backward, training), ``optim`` (SGD, momentum, Adam), ``perceptron``
(perceptron, logic gates, XOR), ``calculus`` (chain rule, computation graphs, Jacobians),
``data`` (loading, splits, standardisation, whitening, one-hot), ``generalisation`` (L1,
shifted images, early stopping, the ReLU interpolant of universal approximation).
"""
