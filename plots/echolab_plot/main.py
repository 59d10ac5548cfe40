"""echolab-plot command line: RESULTS_DIR [--out DIR] -> figures (SVG + PNG) and report.html."""
import argparse
import os
import sys
import traceback

# bench/ beside plots/ (a checkout, or PREFIX/share/echolab installed) knows the version.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "bench"))
import echolab_home  # noqa: E402

EXIT_USAGE = 2


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="echolab-plot",
        description="Draw the figures of an echolab-bench result set and write report.html beside them.")
    parser.add_argument("results_dir", metavar="RESULTS_DIR", help="a result set written by echolab-bench")
    parser.add_argument("--out", metavar="DIR", help="where to write the figures (default: RESULTS_DIR/figures)")
    parser.add_argument("--markdown", metavar="FILE",
                        help="also write the cell table as markdown to FILE ('-': standard output)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    echolab_home.add_version_argument(parser)
    return parser.parse_args(argv)


def _import_matplotlib():
    """The Agg backend (no display needed), or None if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401  (fails if e.g. numpy is broken)
        matplotlib.rcParams["svg.hashsalt"] = "echolab"  # stable SVG ids: same input, same file
        return matplotlib
    except ImportError:
        return None


def figure_catalogue():
    """(file name, report title, function) in report order."""
    from . import figures_connections, figures_cost, figures_generators, figures_latency, figures_load
    return [
        ("throughput_vs_connections", "Throughput vs connections (closed loop)",
         figures_load.throughput_vs_connections),
        ("throughput_p99_vs_connections", "Throughput and p99 vs connections, failures marked",
         figures_connections.throughput_and_p99_vs_connections),
        ("latency_spectrum", "Latency percentile spectrum", figures_latency.latency_spectrum),
        ("latency_vs_rate", "Latency vs offered rate (open loop)", figures_latency.latency_vs_rate),
        ("slo_capacity", "Capacity at a latency objective", figures_latency.slo_capacity),
        ("connection_setup_rate", "Connection set-up rate (connect mode)", figures_load.connection_setup_rate),
        ("server_cost", "Server cost per message", figures_cost.server_cost),
        ("service_cost", "Service work: CPU-bound vs blocking", figures_cost.service_cost),
        ("datagram_load", "Datagram engines: throughput and loss", figures_load.datagram_load),
        ("throughput_p99_vs_generators", "Throughput and p99 vs generators (MPI)",
         figures_generators.throughput_and_p99_vs_generators),
    ]


def draw_all(results, out_dir, log):
    from . import style
    from .figure import NoData, Outcome
    style.use_engine_order(results.engine_order)
    outcomes = []
    for name, title, function in figure_catalogue():
        outcome = Outcome(name=name, title=title)
        try:
            figure, outcome.caption = function(results)
            outcome.files = style.save(figure, out_dir, name)
            log(f"echolab-plot: {name}: {', '.join(outcome.files)}")
        except NoData as reason:
            outcome.skipped = str(reason)
            log(f"echolab-plot: {name}: skipped ({reason})")
        except Exception as error:  # one broken figure must not cost the others or the report
            outcome.skipped = f"could not draw it: {type(error).__name__}: {error}"
            print(f"echolab-plot: {name}: failed: {error}", file=sys.stderr)
            traceback.print_exc(limit=3, file=sys.stderr)
        finally:
            import matplotlib.pyplot as plt
            plt.close("all")
        outcomes.append(outcome)
    return outcomes


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if _import_matplotlib() is None:
        print(f"echolab-plot: matplotlib is not importable by {sys.executable}: install python3-matplotlib "
              "(apt-get install python3-matplotlib)", file=sys.stderr)
        return EXIT_USAGE
    from . import report, results as results_mod
    try:
        results = results_mod.ResultSet(args.results_dir)
    except results_mod.ResultSetError as error:
        print(f"echolab-plot: {error}", file=sys.stderr)
        return EXIT_USAGE
    out_dir = os.path.abspath(args.out or os.path.join(results.directory, "figures"))
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        print(f"echolab-plot: cannot create {out_dir}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    log = (lambda line: None) if args.quiet else print
    outcomes = draw_all(results, out_dir, log)
    report_path = os.path.join(out_dir, "report.html")
    with open(report_path, "w", encoding="utf-8") as f:
        f.write(report.render(results, outcomes))
    if args.markdown:
        table = report.markdown(results)
        if args.markdown == "-":
            sys.stdout.write(table)
        else:
            try:
                with open(args.markdown, "w", encoding="utf-8") as f:
                    f.write(table)
            except OSError as error:
                print(f"echolab-plot: cannot write {args.markdown}: {error.strerror}", file=sys.stderr)
                return EXIT_USAGE
    drawn = sum(1 for o in outcomes if not o.skipped)
    log(f"echolab-plot: {drawn}/{len(outcomes)} figures; report in {report_path}")
    return 0
