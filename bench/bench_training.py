"""Benchmark: training the course's 784-128-64-10 network in numpy, PyTorch and scikit-learn.

Table 1 (speed). One ReLU/softmax network, 784-128-64-10, trained with plain SGD (no momentum,
no penalty), batch 128, float32, on the 4000-example training split of the embedded 5k MNIST,
from the SAME initial weights (He init drawn by numpy, copied into torch's Linear layers and
into sklearn's coefs_), with the same number of BLAS/OpenMP threads everywhere:
  - numpy:   solutions_lib.network.MLP (its fused training step), in this process;
  - PyTorch: the idiomatic loop (nn.Sequential, CrossEntropyLoss, optim.SGD) in a SEPARATE
             process, so that idle OpenBLAS threads of numpy cannot spin against torch;
  - sklearn: MLPClassifier(solver="sgd", momentum=0, alpha=0), one partial_fit per epoch.
It reports the median ms per epoch over the timed epochs (after one warm-up epoch, pooled over
--rounds rounds that alternate the three), the achieved GFLOP/s with the nominal count
3 · 2·N·Σ(n_in·n_out) per epoch (forward + a backward counted as twice the forward), that as a
percentage of numpy's float32 GEMM peak (a 2048³ matmul, same threads), the test accuracy
after the timed epochs (a sanity check that all three train the same network), and the ratio
numpy/torch (target <= 0.85).

Table 2 (accuracy). The course's best recipe (RECIPE below) on the 4000/500/500 stratified
split (split seed 0; standardised with training statistics), trained with seeds 0..4: test
accuracy per seed, mean ± sample std, and the total wall time of the five fits
(targets: mean >= 93 %, total <= 30 s).

    python bench/bench_training.py              # full run (about a minute on 2 cores)
    python bench/bench_training.py --quick      # smoke run (a few seconds)
    python bench/bench_training.py --threads 2  # threads for every library (default 1)
"""
import argparse
import os
import sys

# Threads must be fixed before numpy (OpenBLAS) is imported, so parse the options first.
_parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
_parser.add_argument("--quick", action="store_true", help="fast smoke run: fewer epochs, rounds, seeds")
_parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads for every library")
_parser.add_argument("--epochs", type=int, default=None, help="timed epochs per round (default 8)")
_parser.add_argument("--rounds", type=int, default=None, help="rounds of numpy/torch/sklearn (default 3)")
_parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate of the speed table")
_parser.add_argument("--skip-speed", action="store_true")
_parser.add_argument("--skip-accuracy", action="store_true")
_parser.add_argument("--torch-worker", metavar="NPZ", help=argparse.SUPPRESS)  # internal
_ARGS = _parser.parse_args()
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(_ARGS.threads)

import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from importlib.util import find_spec  # noqa: E402

import numpy as np  # noqa: E402

SIZES = (784, 128, 64, 10)
BATCH = 128
SPLIT = (4000, 500, 500)

#: The best recipe found (selected on validation accuracy; see docs/benchmarks_training.md).
RECIPE = dict(sizes=SIZES, hidden_activation="relu", init="he", optimizer="adam", lr=1e-3,
              l2=3e-3, dropout=0.0, batch_size=128, epochs=50, patience=15, dtype=np.float32)


# ---------------------------------------------------------------- the torch worker process
def torch_worker(path):
    """Train the network in torch from the arrays in ``path``; print one JSON line."""
    data = np.load(path)
    cfg = json.loads(str(data["config"]))
    try:
        import torch
    except ImportError:
        print(json.dumps({"error": "not installed"}))
        return
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    X, y = t(data["X_train"]), t(data["y_train"]).long()
    X_test, y_test = t(data["X_test"]), t(data["y_test"]).long()
    layers = []
    for l in range(1, len(cfg["sizes"])):
        n_in, n_out = cfg["sizes"][l - 1], cfg["sizes"][l]
        lin = torch.nn.Linear(n_in, n_out)
        with torch.no_grad():                         # torch's weight is (out, in): our layout
            lin.weight.copy_(t(data[f"W{l}"]))
            lin.bias.copy_(t(data[f"b{l}"]))
        layers += [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])
    N, bs, times = X.shape[0], cfg["batch"], []
    for _ in range(cfg["epochs"]):
        t0 = time.perf_counter()
        perm = torch.randperm(N)
        for s in range(0, N, bs):
            idx = perm[s:s + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    with torch.inference_mode():
        acc = (model(X_test).argmax(1) == y_test).float().mean().item()
    print(json.dumps({"times": times, "test_acc": acc, "version": torch.__version__,
                      "threads": torch.get_num_threads()}))


if _ARGS.torch_worker:
    torch_worker(_ARGS.torch_worker)
    sys.exit(0)


# ---------------------------------------------------------------- main process
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from solutions_lib.data import (  # noqa: E402
    fit_standardizer, load_mnist, standardize, train_val_test_split,
)
from solutions_lib.network import MLP, init_params  # noqa: E402


def load_data():
    """The 4000/500/500 stratified split (seed 0) of the embedded 5k MNIST, standardised."""
    X, y = load_mnist(source="embedded")
    Xtr, ytr, Xva, yva, Xte, yte = train_val_test_split(X, y, SPLIT, seed=0, stratify=True)
    mu, sigma = fit_standardizer(Xtr)
    f32 = lambda A: standardize(A, mu, sigma).astype(np.float32)  # noqa: E731
    return f32(Xtr), ytr, f32(Xva), yva, f32(Xte), yte


def gemm_peak(threads, n=2048, repeats=5):
    """numpy's float32 matmul speed in GFLOP/s (median of ``repeats`` n×n×n products)."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def run_numpy(data, seed, lr, epochs):
    Xtr, ytr, _, _, Xte, yte = data
    model = MLP(SIZES, init="he", optimizer="sgd", lr=lr, batch_size=BATCH, epochs=epochs,
                seed=seed, dtype=np.float32, progress=False).fit(Xtr, ytr)
    return model.history_["epoch_time"], model.score(Xte, yte)


def run_torch(data, params, seed, lr, epochs, threads):
    if find_spec("torch") is None:
        return None, None, "not installed"
    Xtr, ytr, _, _, Xte, yte = data
    cfg = dict(sizes=SIZES, lr=lr, batch=BATCH, epochs=epochs, threads=threads, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "torch_input.npz")
        np.savez(path, X_train=Xtr, y_train=ytr, X_test=Xte, y_test=yte,
                 config=json.dumps(cfg), **params)
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--threads", str(threads),
                              "--torch-worker", path], capture_output=True, text=True)
    try:
        res = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return None, None, "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    if "error" in res:
        return None, None, res["error"]
    return res["times"], res["test_acc"], f"torch {res['version']}, {res['threads']} thread(s)"


def run_sklearn(data, params, seed, lr, epochs):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    Xtr, ytr, _, _, Xte, yte = data
    clf = MLPClassifier(hidden_layer_sizes=SIZES[1:-1], activation="relu", solver="sgd",
                        learning_rate="constant", learning_rate_init=lr, momentum=0.0,
                        nesterovs_momentum=False, alpha=0.0, batch_size=BATCH, shuffle=True,
                        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.partial_fit(Xtr[:BATCH], ytr[:BATCH], classes=np.arange(SIZES[-1]))  # allocates
    assert clf.coefs_[0].dtype == np.float32
    for l in range(len(SIZES) - 1):                  # then start from our initial weights
        clf.coefs_[l][...] = params[f"W{l + 1}"].T   # sklearn stores W as (n_in, n_out)
        clf.intercepts_[l][...] = params[f"b{l + 1}"]
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        clf.partial_fit(Xtr, ytr)                    # one epoch of minibatch SGD
        times.append(time.perf_counter() - t0)
    return times, float(clf.score(Xte, yte)), f"scikit-learn {__import__('sklearn').__version__}"


def speed_table(data, threads, epochs, rounds, lr, seed=0):
    n = data[0].shape[0]
    gflop = 3 * 2 * n * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:])) / 1e9
    peak = gemm_peak(threads)
    params = init_params(SIZES, np.random.default_rng(seed), init="he", dtype=np.float32)
    times = {"numpy": [], "torch": [], "sklearn": []}
    acc, note = {}, {}
    for _ in range(rounds):                          # alternate, so load changes hit all three
        t, acc["numpy"] = run_numpy(data, seed, lr, epochs + 1)
        times["numpy"] += t[1:]
        note["numpy"] = f"numpy {np.__version__}, solutions_lib MLP"
        t, acc["torch"], note["torch"] = run_torch(data, params, seed, lr, epochs + 1, threads)
        times["torch"] += (t or [None])[1:]
        t, acc["sklearn"], note["sklearn"] = run_sklearn(data, params, seed, lr, epochs + 1)
        times["sklearn"] += t[1:]
    ms = {k: 1e3 * statistics.median(v) if v else None for k, v in times.items()}
    print(f"\n### Training speed: {'-'.join(map(str, SIZES))} ReLU/softmax, SGD lr={lr}, batch "
          f"{BATCH}, float32, {n} training examples, {threads} thread(s)\n")
    print(f"numpy float32 GEMM peak (2048³ matmul): {peak:.1f} GFLOP/s; nominal work per epoch "
          f"{gflop:.2f} GFLOP (forward + 2 × forward for backward); {rounds} round(s) × "
          f"{epochs} timed epochs (+1 warm-up each)\n")
    print("| implementation | ms / epoch (median) | GFLOP/s | % of GEMM peak | test acc after "
          f"{epochs + 1} epochs | version |")
    print("|---|---:|---:|---:|---:|---|")
    for k in ("numpy", "torch", "sklearn"):
        if ms[k] is None:
            print(f"| {k} | {note[k]} | | | | |")
            continue
        gfs = gflop / (ms[k] / 1e3)
        print(f"| {k} | {ms[k]:.1f} | {gfs:.1f} | {100 * gfs / peak:.0f} % | {acc[k]:.4f} | {note[k]} |")
    if ms["torch"]:
        ratio = ms["numpy"] / ms["torch"]
        print(f"\nratio numpy / torch = {ratio:.2f} (target <= 0.85: "
              f"{'met' if ratio <= 0.85 else 'MISSED'})")
    if ms["sklearn"]:
        print(f"ratio numpy / sklearn = {ms['numpy'] / ms['sklearn']:.2f}")
    return ms


def accuracy_table(data, seeds):
    Xtr, ytr, Xva, yva, Xte, yte = data
    recipe = ", ".join(f"{k}={v.__name__ if isinstance(v, type) else v}"
                       for k, v in RECIPE.items() if k != "sizes")
    print(f"\n### Accuracy: best recipe, {len(seeds)} seeds, split {SPLIT} (split seed 0)\n")
    print(f"MLP({'-'.join(map(str, SIZES))}, {recipe}); inputs standardised with training "
          "statistics; early stopping on validation accuracy restores the best epoch\n")
    print("| seed | test acc | val acc | best epoch | epochs run | fit time (s) |")
    print("|---:|---:|---:|---:|---:|---:|")
    accs, total = [], 0.0
    for s in seeds:
        t0 = time.perf_counter()
        model = MLP(seed=s, progress=False, **RECIPE).fit(Xtr, ytr, Xva, yva)
        acc = model.score(Xte, yte)
        dt = time.perf_counter() - t0
        total += dt
        accs.append(acc)
        print(f"| {s} | {acc:.4f} | {model.score(Xva, yva):.4f} | {model.best_epoch_} | "
              f"{model.n_epochs_} | {dt:.2f} |")
    mean = float(np.mean(accs))
    std = float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0
    print(f"\ntest accuracy {100 * mean:.2f} ± {100 * std:.2f} % (mean ± sample std over seeds "
          f"{list(seeds)}); total time {total:.1f} s")
    print(f"targets: mean >= 93 %: {'met' if mean >= 0.93 else 'MISSED'}; "
          f"total <= 30 s: {'met' if total <= 30 else 'MISSED'}")
    return mean, std, total


def main():
    args = _ARGS
    epochs = args.epochs or (2 if args.quick else 8)
    rounds = args.rounds or (1 if args.quick else 3)
    seeds = range(2) if args.quick else range(5)
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i['internal_api']} {i.get('version', '')} ({i['num_threads']} threads)"
                         for i in threadpool_info())
    except ImportError:
        blas = "threadpoolctl not installed"
    print(f"# bench_training{' --quick' if args.quick else ''}: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; Python "
          f"{platform.python_version()}, numpy {np.__version__}; BLAS in this process: {blas}")
    data = load_data()
    if not args.skip_speed:
        speed_table(data, args.threads, epochs, rounds, args.lr)
    if not args.skip_accuracy:
        accuracy_table(data, seeds)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
