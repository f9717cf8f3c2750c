"""`madoc-sensor` command line: argument parsing only, then one function per command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sensor import __version__, documents_epilog
from sensor.support.logs import FORMATS, setup_logging

if TYPE_CHECKING:            # the commands import their modules when they run
    from sensor.config import SensorConfig
    from sensor.core.decode.tunnel import TunnelPorts

DEFAULT_CONFIG = Path("/etc/madoc/sensor.yaml")
DESCRIPTION = """\
madoc-sensor watches DNS and TCP/UDP flows, matches them against a campaign's
blocklists of malicious domains and addresses, and reports which internal
hosts contacted them."""


def _replay_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay", help="analyse capture files (pcap, pcapng, .gz) offline",
        description="Read capture files, write DNS, flow and alert events as EVE JSON, "
                    "and print a summary with a per-host table on stderr. "
                    "Exit status: 0 when every file was read (hits or not), "
                    "2 when a file or the rules could not be used.")
    p.add_argument("captures", nargs="+", type=Path, metavar="PCAP",
                   help="capture files, processed in the order given")
    p.add_argument("--rules", action="append", type=Path, default=[], metavar="PATH",
                   help="a rules.yaml, or one list file in any supported format (detected "
                        "from its content); repeatable; default: the project's "
                        "rules/rules.yaml")
    p.add_argument("--eve", metavar="FILE|-",
                   help="write EVE JSON lines to FILE, or to stdout with '-'")
    p.add_argument("--no-flows", action="store_true",
                   help="leave flow events out of the EVE output")
    p.add_argument("--no-dns", action="store_true", help="leave dns events out of the EVE output")
    p.add_argument("--no-app", action="store_true",
                   help="do not read names inside connections (TLS and QUIC ClientHellos, "
                        "HTTP requests): no tls, quic or http events, and no tls.*, quic.* "
                        "or http.* alerts")
    p.add_argument("--filter", metavar="EXPR", dest="bpf_filter",
                   help="default (what the live sensor keeps by default), all, or a capture "
                        "filter in libpcap syntax (as tcpdump), applied before decoding")
    p.add_argument("--reload-period", type=float, default=5.0, metavar="SECONDS",
                   help="check the rules' files for changes this often and reload them "
                        "(also on SIGHUP); default 5")
    p.add_argument("--vxlan-port", type=int, metavar="PORT",
                   help="UDP port read as VXLAN (default: the configuration's, else 4789; "
                        "Linux's old default is 8472)")
    p.add_argument("--geneve-port", type=int, metavar="PORT",
                   help="UDP port read as Geneve (default: the configuration's, else 6081)")
    p.add_argument("--internal", action="append", metavar="CIDR",
                   help="internal network (repeatable); default: RFC 1918, 100.64.0.0/10, "
                        "fc00::/7, fe80::/10")
    up = p.add_argument_group(
        "sending to a collector (back-fill)",
        "With --collector, alerts and per-host counts also go to the collector, through an "
        "on-disk spool, exactly once: a back-fill that is interrupted resumes where it "
        "stopped when run again, and one that finished is not sent twice. Exit status 3 "
        "when batches are still spooled after --drain-timeout.")
    up.add_argument("-c", "--config", type=Path, metavar="FILE", default=argparse.SUPPRESS,
                    help="back-fill as the sensor this sensor.yaml configures: its collector, "
                         "token, CA, sensor id, spool (state_dir), rules and internal "
                         "networks; the options below override it")
    up.add_argument("--collector", metavar="URL",
                    help="the collector's base URL, https://HOST:PORT")
    up.add_argument("--token-file", type=Path, metavar="FILE",
                    help="file holding this sensor's token (madoc-collector tokens add)")
    up.add_argument("--sensor-id", help="this sensor's id (default: the configuration's, else "
                                         "asked of the collector)")
    up.add_argument("--spool", type=Path, metavar="FILE",
                    help="spool file (default: STATE_DIR/spool-SENSOR_ID.db; STATE_DIR is "
                         "$STATE_DIRECTORY, /var/lib/madoc for root, else "
                         "~/.local/state/madoc)")
    up.add_argument("--ca-file", metavar="PEM", help="verify the collector against this CA")
    up.add_argument("--insecure", action="store_true",
                    help="allow plain http:// to a non-loopback collector")
    up.add_argument("--drain-timeout", type=float, default=120.0, metavar="SECONDS",
                    help="wait this long at the end for the spool to drain (default 120)")
    up.add_argument("--batch-seconds", type=float, default=10.0, metavar="SECONDS",
                    help="cut a batch after this much capture time (default 10), or at 500 "
                         "alerts")
    up.add_argument("--retry-max", type=float, default=60.0, metavar="SECONDS",
                    help="longest wait between retries while the collector is unreachable "
                         "(default 60; waits double from 0.5 s, with jitter)")
    up.add_argument("--resend", action="store_true",
                    help="send captures that were already sent once (counts them again)")
    local = p.add_argument_group("local summary (a unit without a collector)")
    local.add_argument("--summary-db", type=Path, metavar="FILE",
                       help="also keep per-host daily counts in this SQLite file, which "
                            "`madoc-sensor summary --db FILE` reports on")
    local.add_argument("--unit", default="local", help="the unit named in that summary")


def _summary_parser(sub: argparse._SubParsersAction) -> None:
    from sensor.collector.report import add_period_arguments

    p = sub.add_parser(
        "summary", help="form 2 numbers from this sensor's own store (no collector needed)",
        description="The campaign report's form 2 for this sensor's unit, from the local "
                    "store of per-host daily counts the daemon keeps (STATE_DIR/summary.db; "
                    "replay writes one with --summary-db): computers covered, found with "
                    "hits and handled now, the top indicators and the hosts still infected, "
                    "counted as the collector counts them. Exit status 2 when the store "
                    "or the period cannot be used.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-c", "--config", type=Path, metavar="FILE", default=argparse.SUPPRESS,
                       help="take the store from this configuration's state_dir")
    where.add_argument("--db", type=Path, metavar="FILE",
                       help="the store itself (default /var/lib/madoc/summary.db)")
    add_period_arguments(p, "this machine's time zone")
    p.add_argument("-f", "--format", choices=("md", "csv", "json"), default="md",
                   help="Markdown (default), CSV or JSON (the collector report's contract)")
    p.add_argument("--lang", choices=("vi", "en"), default="vi")


def _rules_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rules", help="check blocklists and look indicators up",
                       description="Load blocklists as the sensor would.")
    rules_sub = p.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = rules_sub.add_parser("check", help="load every source and report per source; "
                                               "exit 1 if a source failed")
    lookup = rules_sub.add_parser("lookup", help="say whether and why names, addresses, URLs "
                                                 "or JA3/JA4 fingerprints match")
    lookup.add_argument("values", nargs="+", metavar="VALUE",
                        help="a name, an IP address, a URL (http://…), a JA3 MD5 or a JA4")
    for q in (check, lookup):
        q.add_argument("--rules", action="append", type=Path, default=[], metavar="PATH",
                       help="a rules.yaml or a list file (repeatable); default: rules/rules.yaml")


def _config_arguments(p: argparse.ArgumentParser, interface_verb: str) -> None:
    """The daemon's configuration file and interface override, shared by run and doctor."""
    p.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS,
                   metavar="FILE", help=f"configuration file (default {DEFAULT_CONFIG})")
    p.add_argument("-i", "--interface", action="append", metavar="NAME",
                   help=f"{interface_verb} this interface instead of sensor.interfaces "
                        "(repeatable)")


def _run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="capture live on the gateway or a mirror port (the daemon)",
        description="Capture DNS and flows from network interfaces, match them against the "
                    "blocklists, write EVE JSON and send alerts and per-host counts to the "
                    "collector (sensor.mode gateway: flows from the kernel's conntrack, "
                    "DNS from capture). Starts as root, opens its sockets, then keeps only "
                    "CAP_NET_RAW (and CAP_NET_ADMIN in gateway mode) as the configured "
                    "user. Prometheus metrics on metrics.listen (default "
                    "127.0.0.1:9570). SIGHUP reloads the rules; "
                    "SIGTERM/SIGINT stop cleanly. Exit status 2 when the configuration, "
                    "the rules or an interface cannot be used, 1 when a worker failed.")
    _config_arguments(p, "capture on")
    p.add_argument("--eve", metavar="FILE", help="append EVE JSON lines to FILE")
    p.add_argument("--workers", type=int, metavar="N",
                   help="capture processes sharing the link (default: cores minus one)")
    p.add_argument("--filter", metavar="EXPR",
                   help="default, all, or a libpcap expression (overrides sensor.filter)")
    p.add_argument("--user", help="user to run as after opening the sockets (default madoc)")
    p.add_argument("--state-dir", type=Path, metavar="DIR",
                   help="spool and caches (default /var/lib/madoc)")
    p.add_argument("--log-format", choices=FORMATS, default="text",
                   help="log lines as text (default; journald adds the time) or one JSON "
                        "object per line (ts, program, level, logger, message)")


def _doctor_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor", help="check this host before running the daemon",
        description="Check, with the daemon's configuration, what it needs: capabilities "
                    "(CAP_NET_RAW, and CAP_NET_ADMIN in gateway mode) and the service user, "
                    "AF_PACKET with TPACKET_V3 rings, conntrack (gateway mode), each "
                    "interface present and up, the rules loading, the state directory "
                    "writable, the collector reachable and knowing the token, the metrics "
                    "address free. Nothing is changed. Run as root (or as the service). "
                    "Exit status 1 when a check failed, 2 when the configuration is wrong.")
    _config_arguments(p, "check")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="madoc-sensor", description=DESCRIPTION,
                                     epilog=documents_epilog())
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-c", "--config", type=Path, metavar="FILE",
                        help="sensor.yaml, for run, doctor, summary and replay's back-fill; "
                             "may be given before or after the command")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _replay_parser(sub)
    _run_parser(sub)
    _rules_parser(sub)
    _doctor_parser(sub)
    _summary_parser(sub)
    sub.add_parser("demo", help="replay the bundled captures and print alerts and hosts",
                   description="Replay the captures in pcaps/ against rules/rules.yaml and "
                               "print the alerts and the per-host table.")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("run", "doctor"):
        args.config = args.config or DEFAULT_CONFIG
    elif args.command == "summary" and args.config and args.db:
        parser.error("summary: give -c/--config or --db, not both")
    elif args.command not in ("replay", "summary") and args.config:
        parser.error(f"{args.command} takes no -c/--config")
    if args.command == "replay":
        return _replay(parser, args)
    if args.command == "run":
        return _run(args)
    if args.command == "summary":
        from sensor.commands.summary import summary_command

        return summary_command(args)
    if args.command == "rules":
        from sensor.commands.rules import check, lookup

        if args.rules_command == "check":
            return check(args.rules)
        return lookup(args.rules, args.values)
    if args.command == "doctor":
        from sensor.commands.doctor import doctor
        from sensor.config import ConfigError, load_config

        try:
            config = load_config(args.config)
        except ConfigError as err:
            print(f"madoc-sensor: {err}", file=sys.stderr)
            return 2
        config.interfaces = args.interface or config.interfaces
        return doctor(config)
    if args.command == "demo":
        from sensor.commands.demo import demo

        return demo()
    return 2


def _replay(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from sensor.commands.replay import ReplayOptions, replay
    from sensor.config import FILTERS, ConfigError, SensorConfig, load_config
    from sensor.core.detect import DEFAULT_INTERNAL_NETWORKS
    from sensor.support.accounts import act_as
    from sensor.uplink.backfill import BackfillOptions

    config = SensorConfig(interfaces=[])
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as err:
            print(f"madoc-sensor: {err}", file=sys.stderr)
            return 2
        if config.collector is None:
            parser.error(f"replay: {args.config} configures no collector to back-fill to")
        act_as(config.user, required=False)     # the service's spool stays the service's
    settings = config.collector
    uplink = None
    if args.collector or settings:
        token_file = args.token_file or (settings and settings.token_file)
        if not token_file:
            parser.error("--collector needs --token-file")
        sensor_id = args.sensor_id or config.sensor_id
        uplink = BackfillOptions(
            args.collector or settings.url, token_file, sensor_id,
            args.spool or (config.spool_path if settings and sensor_id else None),
            args.ca_file or (settings and settings.ca_file),
            args.insecure or bool(settings and settings.insecure), args.drain_timeout,
            args.resend, max_age=args.batch_seconds, backoff_max=args.retry_max)
    return replay(ReplayOptions(
        captures=args.captures, rules=args.rules or (config.rules if args.config else []),
        eve=args.eve, dns=not args.no_dns, flows=not args.no_flows, app=not args.no_app,
        bpf_filter=FILTERS.get(args.bpf_filter, args.bpf_filter),
        internal=args.internal or config.internal_networks or list(DEFAULT_INTERNAL_NETWORKS),
        reload_period=args.reload_period, uplink=uplink, summary=args.summary_db,
        unit=args.unit, tunnels=_tunnel_ports(parser, args, config)))


def _tunnel_ports(parser: argparse.ArgumentParser, args: argparse.Namespace,
                  config: SensorConfig) -> TunnelPorts:
    """--vxlan-port/--geneve-port, else the configuration's (-c), else the defaults."""
    ports = config.tunnels._replace(vxlan=args.vxlan_port or config.tunnels.vxlan,
                                    geneve=args.geneve_port or config.tunnels.geneve)
    if not all(1 <= port <= 65535 for port in ports):
        parser.error("--vxlan-port and --geneve-port take a port, 1 … 65535")
    return ports


def _run(args: argparse.Namespace) -> int:
    import logging

    from sensor.config import FILTERS, ConfigError, load_config
    from sensor.daemon.main import EXIT_BAD_CONFIG, run

    setup_logging("madoc-sensor", args.log_format)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        logging.error("%s", err)
        return EXIT_BAD_CONFIG
    if args.interface:
        config.interfaces = args.interface
    if args.eve:
        config.eve = Path(args.eve).resolve()
    gateway = config.mode == "gateway"
    if args.workers is not None:
        if args.workers < 1 or (gateway and args.workers != 1):
            logging.error("--workers must be %s", "1 with mode: gateway" if gateway
                          else "at least 1")
            return EXIT_BAD_CONFIG
        config.workers = args.workers
    if args.filter is not None:
        if gateway:
            logging.error("--filter cannot be used with mode: gateway (DNS only is captured)")
            return EXIT_BAD_CONFIG
        config.filter = FILTERS.get(args.filter, args.filter)
    if args.user:
        config.user = args.user
    if args.state_dir:
        config.state_dir = args.state_dir.resolve()
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
