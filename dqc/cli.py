"""The ``dqc`` command line: argument parsing only; the work lives in the library."""

from __future__ import annotations

import argparse
import json
import sys

from dqc.checkpoint import CheckpointError
from dqc.datasets import NODE_DATASETS, DatasetError
from dqc.graph_datasets import GRAPH_DATASETS
from dqc.models import ARCHS
from dqc.schemes import SCHEMES
from dqc.sparse_input import MAX_NONZERO_FRACTION, MODES
from dqc.workloads import NODE_WORKLOADS, WORKLOADS

FROM_CONFIG = "default: from dqc/defaults.toml per dataset, arch and scheme"


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, unless its help already explains the default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root",
        metavar="DIR",
        help="dataset folder in PyG's raw layout (default: $DQC_DATA_ROOT, else "
        "~/.cache/dqc/data with download)",
    )


def _add_remote(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rpc", metavar="HOST:PORT", help="run on this TVM RPC server (default: this machine)"
    )
    parser.add_argument(
        "--tracker", metavar="HOST:PORT", help="get the RPC server from this TVM tracker"
    )
    parser.add_argument("--key", help="device key to request from --tracker")


def _remote(args: argparse.Namespace) -> dict:
    return {"rpc": args.rpc, "tracker": args.tracker, "key": args.key}


def _progress_log(args: argparse.Namespace):
    """Where a command's stage lines go: stderr, or nowhere with ``-q``."""
    return (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr))


def _train(args: argparse.Namespace) -> None:
    from dqc.checkpoint import save_checkpoint

    settings = {
        "seed": args.seed,
        "data_root": args.data_root,
        "progress": not args.quiet,
        "epochs": args.epochs,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "p_min": args.p_min,
        "p_max": args.p_max,
        "weight_range": args.weight_range,
        "hidden_channels": args.hidden_channels,
        "dropout": args.dropout,
    }
    graph_level = args.dataset in GRAPH_DATASETS
    graph_options = (args.pooling, args.batch_norm, args.norm_after_relu)
    if any(option is not None for option in graph_options) and not graph_level:
        raise ValueError(
            "--pooling, --batch-norm and --norm-after-relu are for graph-level datasets, "
            f"not {args.dataset}"
        )
    if graph_level:
        from pathlib import Path

        settings["pooling"] = args.pooling
        settings["batch_norm"] = args.batch_norm
        settings["norm_after_relu"] = args.norm_after_relu
        from dqc.graph_training import train_graph_model

        resume = Path(f"{args.output}.resume")
        if resume.is_file() and not args.quiet:
            print(f"resuming from {resume}", file=sys.stderr)
        trained = train_graph_model(
            args.dataset, args.arch, args.scheme, fold=args.fold, resume_path=resume, **settings
        )
    else:
        from dqc.training import train_model

        trained = train_model(args.dataset, args.arch, args.scheme, **settings)
    m = trained.metrics
    save_checkpoint(args.output, trained.model, trained.config, args.dataset, trained.training, m)
    if graph_level:
        resume.unlink(missing_ok=True)
        metric = "accuracy" if "test_accuracy" in m else "mae"
        unit = " %" if metric == "accuracy" else ""
        split = f"fold {args.fold}, " if args.dataset == "reddit-binary" else ""
        print(
            f"{args.dataset} {args.arch} {args.scheme} ({split}seed {args.seed}): best epoch "
            f"{m['best_epoch']}, validation {metric} {m[f'val_{metric}']:.3f}{unit}, "
            f"test {metric} {m[f'test_{metric}']:.3f}{unit}"
        )
    else:
        print(
            f"{args.dataset} {args.arch} {args.scheme} (seed {args.seed}): best epoch "
            f"{m['best_epoch']}, validation accuracy {m['val_acc']:.1f} %, "
            f"test accuracy {m['test_acc']:.1f} %"
        )
    print(f"saved {args.output}")


def _eval(args: argparse.Namespace) -> None:
    if args.model.endswith(".onnx"):
        _eval_onnx(args)
        return
    from dqc.checkpoint import load_checkpoint
    from dqc.datasets import load_node_dataset
    from dqc.training import evaluate

    ckpt = load_checkpoint(args.model)
    if ckpt.config.task == "graph":
        _eval_graph(args, ckpt)
        return
    data = load_node_dataset(ckpt.dataset, args.data_root)
    if data.num_features != ckpt.config.in_channels:
        raise ValueError(
            f"{args.model}: model expects {ckpt.config.in_channels} input features, "
            f"dataset {ckpt.dataset} has {data.num_features}"
        )
    accuracy = evaluate(ckpt.model, data)["test_acc"]
    result = {
        "dataset": ckpt.dataset,
        "arch": ckpt.config.arch,
        "scheme": ckpt.config.scheme,
        "metric": "accuracy",
        "value": round(accuracy, 4),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['dataset']} {result['arch']} {result['scheme']}: test accuracy "
            f"{accuracy:.1f} %"
        )


def _eval_graph(args: argparse.Namespace, ckpt) -> None:
    from dqc.graph_datasets import load_graph_dataset
    from dqc.graph_training import evaluate_graphs

    splits = load_graph_dataset(ckpt.dataset, args.data_root, ckpt.training.get("fold", 0))
    value = evaluate_graphs(ckpt.model, splits.test, splits.metric)["metric"]
    result = {
        "dataset": ckpt.dataset,
        "arch": ckpt.config.arch,
        "scheme": ckpt.config.scheme,
        "metric": splits.metric,
        "value": round(value, 4),
    }
    if args.json:
        print(json.dumps(result))
    else:
        name = f"{ckpt.dataset} {ckpt.config.arch} {ckpt.config.scheme}"
        print(f"{name}: test {splits.metric} {value:.4f}")


def _eval_onnx(args: argparse.Namespace) -> None:
    from dqc.onnx_evaluation import evaluate_onnx

    result = evaluate_onnx(args.model, args.reference, args.data_root)
    if args.json:
        print(json.dumps(result))
        return
    agreement = "" if result["agreement"] is None else f", agreement {result['agreement']} %"
    print(
        f"{result['dataset']} {result['arch']} {result['scheme']} (ONNX Runtime): test accuracy "
        f"{result['value']:.1f} %{agreement}"
    )


def _export_onnx(args: argparse.Namespace) -> None:
    from dqc.onnx_export import export_onnx

    path = export_onnx(args.model, args.output, quantized=not args.fp32)
    print(f"exported {args.model} -> {path}")


def _compile(args: argparse.Namespace) -> None:
    from dqc.compiler import compile_checkpoint
    from dqc.frontend.export import GraphBounds

    bounds = GraphBounds(args.max_nodes, args.max_edges)
    manifest = compile_checkpoint(
        args.model,
        args.output,
        args.target,
        bounds,
        quantized=not args.fp32,
        dump_ir=args.dump_ir,
        log=_progress_log(args),
        tuning_db=args.tuning_db,
        sparse_input=args.sparse_input,
    )
    print(f"compiled {args.model} -> {manifest.parent}")


def _tune(args: argparse.Namespace) -> None:
    from dqc.tuning import tune

    result = tune(
        args.model,
        db=args.db,
        workload=args.workload,
        trials=args.trials,
        target=args.target,
        data_root=args.data_root,
        progress=not args.quiet,
        log=_progress_log(args),
    )
    print(json.dumps(result))


def _run(args: argparse.Namespace) -> None:
    from dqc.evaluation import evaluate_artifact

    result = evaluate_artifact(args.artifact, args.dataset, args.data_root, **_remote(args))
    if args.json:
        print(json.dumps(result))
        return
    if "metric" in result:  # graph-level
        print(
            f"{result['dataset']} {result['arch']} {result['scheme']}: test {result['metric']} "
            f"{result['value']} over {result['graphs']} graphs (fake-quant "
            f"{result['fakequant_value']}, bit-exact with reference: "
            f"{result['bitexact_with_reference']})"
        )
        return
    print(
        f"{result['dataset']} {result['arch']} {result['scheme']}: test accuracy "
        f"{result['accuracy']:.1f} % (fake-quant {result['fakequant_accuracy']}, agreement "
        f"{result['agreement']} %, bit-exact with reference: {result['bitexact_with_reference']})"
    )


def _bench(args: argparse.Namespace) -> None:
    from dqc.bench import run_bench

    result = run_bench(
        args.workload,
        args.model,
        args.repeats,
        args.data_root,
        not args.no_torch_compile,
        _progress_log(args),
        args.target,
        **_remote(args),
    )
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:40s} {value}")


def _demo(args: argparse.Namespace) -> None:

    from dqc.demo import run_demo

    run_demo(args.output, epochs=args.epochs, progress=not args.quiet)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dqc",
        description="Degree-Quant training for graph neural networks, compiled to integer "
        "programs with Apache TVM.",
        formatter_class=_Formatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train", help="train a GNN with FP32, QAT or Degree-Quant", formatter_class=_Formatter
    )
    train.add_argument(
        "--dataset", default="cora", choices=NODE_DATASETS + GRAPH_DATASETS, help="dataset"
    )
    train.add_argument("--arch", default="gcn", choices=ARCHS, help="architecture")
    train.add_argument(
        "--scheme", default="dq-int8", choices=list(SCHEMES), help="precision and method"
    )
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument("--epochs", type=int, help=f"training epochs ({FROM_CONFIG})")
    train.add_argument("--lr", type=float, help=f"Adam learning rate ({FROM_CONFIG})")
    train.add_argument("--weight-decay", type=float, help=f"weight decay ({FROM_CONFIG})")
    train.add_argument("--p-min", type=float, help=f"DQ lowest protection ({FROM_CONFIG})")
    train.add_argument("--p-max", type=float, help=f"DQ highest protection ({FROM_CONFIG})")
    train.add_argument(
        "--weight-range",
        choices=("scheme", "minmax"),
        help=f"weight range tracker: the scheme's, or true min/max ({FROM_CONFIG})",
    )
    train.add_argument("--hidden-channels", type=int, help=f"hidden width ({FROM_CONFIG})")
    train.add_argument("--dropout", type=float, help=f"dropout ({FROM_CONFIG})")
    train.add_argument(
        "--pooling", choices=("mean", "add"), help="graph-level readout pooling (default: mean)"
    )
    train.add_argument(
        "--batch-norm",
        action=argparse.BooleanOptionalAction,
        help=f"GIN on graph-level data: BatchNorm folded into each MLP ({FROM_CONFIG})",
    )
    train.add_argument(
        "--norm-after-relu",
        action=argparse.BooleanOptionalAction,
        help="GIN with --batch-norm: the BatchNorm after the MLP's last ReLU, kept as a "
        f"per-channel scale (the authors' layout) instead of folded ({FROM_CONFIG})",
    )
    train.add_argument(
        "--fold", type=int, default=0, help="REDDIT-BINARY cross-validation fold (0-9)"
    )
    _add_data_root(train)
    train.add_argument(
        "-o",
        "--output",
        default="model.pt",
        help="checkpoint to write; graph-level runs keep OUTPUT.resume after every epoch and "
        "continue from it when rerun (default: model.pt)",
    )
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser(
        "eval",
        help="test accuracy of a trained checkpoint or exported .onnx",
        formatter_class=_Formatter,
    )
    evaluate.add_argument(
        "model", help="checkpoint written by `dqc train`, or a .onnx (run by ONNX Runtime)"
    )
    evaluate.add_argument(
        "--reference",
        metavar="MODEL.pt",
        help="for a .onnx: checkpoint whose fake-quant predictions it is compared with "
        "(default: no agreement reported)",
    )
    _add_data_root(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(func=_eval)

    export = sub.add_parser(
        "export-onnx",
        help="export a checkpoint as a QDQ ONNX model (ONNX Runtime, dqc compile)",
        formatter_class=_Formatter,
    )
    export.add_argument("model", help="checkpoint written by `dqc train`")
    export.add_argument("-o", "--output", default="model.onnx", help="ONNX file to write")
    export.add_argument("--fp32", action="store_true", help="export the float program")
    export.set_defaults(func=_export_onnx)

    compile_ = sub.add_parser(
        "compile", help="compile a checkpoint to a TVM integer program", formatter_class=_Formatter
    )
    compile_.add_argument(
        "model", help="checkpoint written by `dqc train`, or a .onnx from `dqc export-onnx`"
    )
    compile_.add_argument(
        "--target",
        default="host",
        help='"host", a profile (x86-avx2, x86-avx512vnni, arm64-neon, arm64-dotprod, rpi4), '
        'a TVM target string ("llvm -mcpu=cascadelake") or its JSON dict',
    )
    compile_.add_argument("-o", "--output", default="out", help="folder for model.so, dqc.json")
    compile_.add_argument("--max-nodes", type=int, default=1 << 24, help="largest graph accepted")
    compile_.add_argument("--max-edges", type=int, default=1 << 28, help="most edges accepted")
    compile_.add_argument("--dump-ir", metavar="DIR", help="write the IR after every pass here")
    compile_.add_argument(
        "--tuning-db",
        metavar="DIR",
        help="apply the best schedules a `dqc tune` database holds (other kernels: defaults)",
    )
    compile_.add_argument(
        "--sparse-input",
        choices=MODES,
        default="auto",
        help="multiply only the input's nonzero features in the first layer; auto: quantized "
        f"models whose training input was at most {100 * MAX_NONZERO_FRACTION:g} %% nonzero, "
        "on AVX-512 targets",
    )
    compile_.add_argument("--fp32", action="store_true", help="compile as a float program")
    compile_.add_argument("-q", "--quiet", action="store_true", help="no stage progress")
    compile_.set_defaults(func=_compile)

    run = sub.add_parser(
        "run", help="evaluate a compiled model with a parity report", formatter_class=_Formatter
    )
    run.add_argument("artifact", help="folder written by `dqc compile`")
    run.add_argument(
        "--dataset",
        choices=NODE_DATASETS + GRAPH_DATASETS,
        help="dataset to evaluate on (default: the one it was trained on)",
    )
    _add_data_root(run)
    _add_remote(run)
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.set_defaults(func=_run)

    bench = sub.add_parser(
        "bench",
        help="time PyG FP32 and dqc FP32, INT8 and INT4 in one run",
        formatter_class=_Formatter,
    )
    bench.add_argument(
        "model", nargs="?", help="checkpoint (optional for reddit-shaped and *-batch workloads)"
    )
    bench.add_argument("--workload", default="cora", choices=WORKLOADS, help="graph to time on")
    bench.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="rounds of timed calls, the columns taking turns (more until 0.5 s per column)",
    )
    bench.add_argument("--no-torch-compile", action="store_true", help="skip torch.compile")
    bench.add_argument("--target", default="host", help="target of the dqc builds (as compile)")
    _add_remote(bench)
    _add_data_root(bench)
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("-q", "--quiet", action="store_true", help="no progress")
    bench.set_defaults(func=_bench)

    tune = sub.add_parser(
        "tune",
        help="search schedules for a model's kernels with meta_schedule (resumable database)",
        formatter_class=_Formatter,
    )
    tune.add_argument("model", nargs="?", help="checkpoint (optional for reddit-shaped)")
    tune.add_argument(
        "--workload", default="reddit-shaped", choices=NODE_WORKLOADS, help="graph to tune on"
    )
    tune.add_argument(
        "--trials",
        type=int,
        default=64,
        help="measured candidates, split evenly over the kernels; a rerun on the same "
        "database only runs the trials it lacks",
    )
    tune.add_argument("--db", required=True, help="tuning database folder (created; resumed)")
    tune.add_argument("--target", default="host", help="target (as compile; this machine's)")
    _add_data_root(tune)
    tune.add_argument("-q", "--quiet", action="store_true", help="no progress")
    tune.set_defaults(func=_tune)

    demo = sub.add_parser(
        "demo",
        help="train FP32 and DQ-INT8 GCNs on a built-in synthetic graph (no download), "
        "then compile, verify and time the INT8 one",
        formatter_class=_Formatter,
    )
    demo.add_argument("-o", "--output", default="dqc-demo", help="folder for the artifacts")
    demo.add_argument("--epochs", type=int, default=100, help="training epochs")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dqc` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (CheckpointError, DatasetError, ValueError, RuntimeError) as err:
        print(f"dqc: error: {err}", file=sys.stderr)
        return 2
    return 0
