"""`segments reports ...`: trend (drawn in the terminal, `--png FILE` for an image),
reachability, sample users, live rate, and the daily runs that compute them."""

from __future__ import annotations

import argparse
from pathlib import Path

from libs.cli.app import Commands
from libs.cli.charts import Point, terminal_bars, write_png
from libs.cli.connection import Client
from libs.cli.errors import EXIT_SERVER
from libs.cli.files import date_text, day, timestamp
from libs.cli.output import Output, enum_text, timestamp_text
from segments.v1 import evaluator_service_pb2 as ev
from segments.v1 import reporting_service_pb2 as rp

NAME = "reports"
SUMMARY = "reports: trend chart, reachability, sample users, live rate, daily runs"


def _trend(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = rp.GetSegmentTrendRequest(segment=client.segment_name(args.segment))
    if args.start:
        request.start_date.CopyFrom(day(args.start, "--start"))
    if args.end:
        request.end_date.CopyFrom(day(args.end, "--end"))
    response = client.call(client.reporting.GetSegmentTrend, request)
    points = [Point(date_text(p.date), p.user_count, p.computed) for p in response.points]
    if args.png:
        write_png(points, f"{request.segment}: users a day", Path(args.png))
    if out.json:
        out.message(response)
        return
    for line in terminal_bars(points):
        out.line(line)
    if args.png:
        out.note(f"chart written to {args.png}")


def _reachability(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = rp.GetReachabilityRequest(segment=client.segment_name(args.segment))
    if args.date:
        request.date.CopyFrom(day(args.date, "--date"))
    response = client.call(client.reporting.GetReachability, request)
    if out.json:
        out.message(response)
        return
    out.table(
        ("CHANNEL", "REACHABLE", "PERCENT"),
        (
            (
                enum_text(ev.Channel.Name(c.channel), "CHANNEL_"),
                c.reachable_count,
                f"{c.percentage:.1f}%",
            )
            for c in response.channels
        ),
    )
    out.note(f"{response.user_count} users, as of {timestamp_text(response.as_of)}")


def _sample(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = rp.ListSampleUsersRequest(
        segment=client.segment_name(args.segment), page_size=args.size
    )
    if args.date:
        request.date.CopyFrom(day(args.date, "--date"))
    response = client.call(client.reporting.ListSampleUsers, request)
    if out.json:
        out.message(response)
        return
    out.table(
        ("USER", "NAME", "EMAIL", "PHONE", "BLOCKED"),
        (
            (p.user_id, p.display_name, p.email, p.phone, "yes" if p.blocked else "")
            for p in response.profiles
        ),
    )


def _live_rate(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = rp.GetLiveRateRequest(segment=client.segment_name(args.segment))
    if args.start:
        request.start_time.CopyFrom(timestamp(args.start, "--start"))
    if args.end:
        request.end_time.CopyFrom(timestamp(args.end, "--end"))
    response = client.call(client.reporting.GetLiveRate, request)
    if out.json:
        out.message(response)
        return
    out.table(
        ("MINUTE", "ENTERED", "ACTIVE"),
        ((timestamp_text(p.minute), p.entered_count, p.active_count) for p in response.points),
    )


RUN_COLUMNS = ("DAY", "STATE", "ATTEMPTS", "SEGMENTS", "FAILED", "STARTED", "ENDED")


def _run_row(run: rp.DailyRun) -> list[object]:
    return [
        date_text(run.date),
        enum_text(rp.DailyRunState.Name(run.state), "DAILY_RUN_STATE_"),
        run.attempt_count,
        run.succeeded_count,
        len(run.failures),
        timestamp_text(run.start_time),
        timestamp_text(run.end_time),
    ]


def _show_run(out: Output, run: rp.DailyRun) -> int:
    if out.json:
        out.message(run)
    else:
        out.table(RUN_COLUMNS, [_run_row(run)])
        if run.failures:
            out.table(
                ("SEGMENT", "ATTEMPTS", "REASON"),
                ((f.segment, f.attempt_count, f.reason) for f in run.failures),
                title="failed segments",
            )
    return EXIT_SERVER if run.state == rp.DAILY_RUN_STATE_FAILED else 0


def _run(client: Client, out: Output, args: argparse.Namespace) -> int:
    request = rp.RunDailyJobRequest(parent=client.project_name())
    if args.date:
        request.date.CopyFrom(day(args.date, "--date"))
    return _show_run(out, client.call(client.reporting.RunDailyJob, request))


def _run_get(client: Client, out: Output, args: argparse.Namespace) -> int:
    day(args.date, "DATE")  # checked here, named as the API names it
    name = f"{client.project_name()}/dailyRuns/{args.date}"
    return _show_run(
        out, client.call(client.reporting.GetDailyRun, rp.GetDailyRunRequest(name=name))
    )


def _runs(client: Client, out: Output, args: argparse.Namespace) -> None:
    request = rp.ListDailyRunsRequest(parent=client.project_name(), page_size=args.limit)
    response = client.call(client.reporting.ListDailyRuns, request)
    if out.json:
        out.message(response)
    else:
        out.table(RUN_COLUMNS, (_run_row(r) for r in response.daily_runs))


def register(commands: Commands) -> None:
    p = commands.add(
        "trend",
        _trend,
        "a segment's daily size, drawn in the terminal (and as a PNG image with --png)",
        "  segments reports trend ny-buyers --project demo\n"
        "  segments reports trend ny-buyers --start 2026-06-01 --end 2026-06-30 --png trend.png",
    )
    p.add_argument("segment")
    p.add_argument("--start", help="first day, YYYY-MM-DD (default: first complete day)")
    p.add_argument("--end", help="last day, included (default: yesterday)")
    p.add_argument("--png", metavar="FILE", help="also write the chart as a PNG image")

    p = commands.add(
        "reachability",
        _reachability,
        "the share of a segment's users reachable on each channel",
        "  segments reports reachability ny-buyers --project demo",
    )
    p.add_argument("segment")
    p.add_argument("--date", help="that day's daily result (default: computed now)")

    p = commands.add(
        "sample",
        _sample,
        "sample users of a segment with their profiles",
        "  segments reports sample ny-buyers --size 10 --project demo",
    )
    p.add_argument("segment")
    p.add_argument("--date", help="the day (default: today, computed now)")
    p.add_argument("--size", type=int, default=10, help="users (at most 100)")

    p = commands.add(
        "live-rate",
        _live_rate,
        "per-minute entries into a live segment against all active users",
        "  segments reports live-rate cart-abandoners --project demo",
    )
    p.add_argument("segment")
    p.add_argument("--start", help="start instant (default: an hour before --end)")
    p.add_argument("--end", help="end instant (default: now)")

    p = commands.add(
        "run",
        _run,
        "run (or re-run) the daily job for a day; exit 1 when segments failed",
        "  segments reports run --date 2026-06-30 --project demo",
    )
    p.add_argument("--date", help="the day (default: yesterday in the project's time zone)")

    p = commands.add(
        "runs", _runs, "list daily runs, newest first", "  segments reports runs --project demo"
    )
    p.add_argument("--limit", type=int, default=30, help="runs to show (at most 100)")

    p = commands.add(
        "run-get",
        _run_get,
        "show one day's run with its failures",
        "  segments reports run-get 2026-06-30 --project demo",
    )
    p.add_argument("date", help="YYYY-MM-DD")
