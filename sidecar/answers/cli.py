"""`sidecar answers report|list|accept|answer|decline`: the escalation queue and the answer-policy
report of a running sidecar (EscalationService), and what `sidecar chat` shows of a decision."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from sidecar._gen.orchestrator.v1 import escalation_pb2 as esc
from sidecar._gen.orchestrator.v1 import escalation_service_pb2_grpc
from sidecar.config.load import process_environ

_LETTER = {
    ans.ANSWER_PATH_AUTO_ANSWER: "A auto-answer",
    ans.ANSWER_PATH_CLARIFY: "B clarify",
    ans.ANSWER_PATH_CANONICAL: "C canonical answer",
    ans.ANSWER_PATH_OFFER_ESCALATION: "D escalation offered",
    ans.ANSWER_PATH_QUEUED: "E queued for the creator",
    ans.ANSWER_PATH_REFUSE: "F refused",
}


def describe(d: ans.AnswerDecision) -> str:
    """One line for a decision: the path, why, and the signals."""
    s = d.signals
    line = (
        f"[path {_LETTER.get(d.path, '?')}: {d.reason}] similarity={s.similarity:.3f} "
        f"novelty={s.novelty:.3f} complexity={s.complexity:.3f} confidence={s.confidence:.3f}"
    )
    if d.escalation_id:
        line += f" escalation_id={d.escalation_id}"
    return line


def register(sub: Any) -> None:
    """Add the `answers` command to the CLI's subparsers."""
    cmd = sub.add_parser("answers", help="the escalation queue and the answer-policy report of a sidecar")
    actions = cmd.add_subparsers(required=True, metavar="ACTION")
    report = _action(actions, "report", "an agent's figures (auto-answer rate, reuse, backlog, ...)", _report)
    report.add_argument("--agent", required=True)
    listing = _action(actions, "list", "an agent's escalations (queued unless --state says)", _list)
    listing.add_argument("--agent", required=True)
    listing.add_argument("--state", action="append", default=[], choices=[s.lower() for s in _STATES])
    listing.add_argument(
        "--page-size", type=int, default=100, help="escalations asked for per call (1 to 1000)"
    )
    accept = _action(actions, "accept", "accept an escalation offer made to a user", _accept)
    accept.add_argument("escalation_id")
    accept.add_argument("--user", required=True)
    answer = _action(actions, "answer", "answer a queued escalation (it becomes a canonical answer)", _answer)
    answer.add_argument("escalation_id")
    answer.add_argument("text")
    answer.add_argument("--agent", required=True)
    answer.add_argument("--layer", default="", choices=["", "public", "friends", "intimate"])
    decline = _action(actions, "decline", "decline a queued escalation", _decline)
    decline.add_argument("escalation_id")
    decline.add_argument("--agent", required=True)
    decline.add_argument("--reason", default="")


_STATES = ("OFFERED", "QUEUED", "ANSWERED", "DECLINED", "EXPIRED")


def _action(actions: Any, name: str, help_: str, handler: Callable[[argparse.Namespace], int]) -> Any:
    p = actions.add_parser(name, help=help_)
    p.add_argument("--tenant", required=True)
    p.add_argument("--target", default="127.0.0.1:50051", help="host:port or unix:PATH")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--token-env", default="SIDECAR_TOKEN", help="env var holding the bearer token, if any")
    p.set_defaults(handler=handler)
    return p


def _call(args: argparse.Namespace, method: str, request: Any) -> int:
    with _channel(args) as (stub, call):
        reply = _reply(getattr(stub, method), request, call)
    return 1 if reply is None else _print(reply)


@contextlib.contextmanager
def _channel(args: argparse.Namespace) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The service's stub on the target, and the timeout and token every call of the command takes."""
    token = process_environ().get(args.token_env, "")
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    with grpc.insecure_channel(args.target) as channel:
        yield (
            escalation_service_pb2_grpc.EscalationServiceStub(channel),
            {
                "timeout": args.timeout,
                "metadata": metadata,
            },
        )


def _reply(method: Any, request: Any, call: dict[str, Any]) -> Any:
    """The method's reply, or None when it failed (the error written to stderr)."""
    try:
        return method(request, **call)
    except grpc.RpcError as exc:
        from sidecar.cli import _describe_error

        sys.stderr.write(_describe_error(exc) + "\n")
        return None


def _print(reply: Any) -> int:
    doc = MessageToDict(reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return 0


def _report(args: argparse.Namespace) -> int:
    return _call(
        args, "GetAnswerReport", esc.GetAnswerReportRequest(tenant_id=args.tenant, agent_id=args.agent)
    )


def _list(args: argparse.Namespace) -> int:
    """Every page, printed as one list: the pages are asked for one after another."""
    states = [f"ESCALATION_STATE_{s.upper()}" for s in args.state]
    req = esc.ListEscalationsRequest(
        tenant_id=args.tenant, agent_id=args.agent, states=states, page_size=args.page_size
    )
    listed = esc.ListEscalationsResponse()
    with _channel(args) as (stub, call):
        while True:
            reply = _reply(stub.ListEscalations, req, call)
            if reply is None:
                return 1
            listed.escalations.extend(reply.escalations)
            if not reply.next_page_token:
                break
            req.page_token = reply.next_page_token
    return _print(listed)


def _accept(args: argparse.Namespace) -> int:
    req = esc.AcceptEscalationRequest(
        tenant_id=args.tenant, user_id=args.user, escalation_id=args.escalation_id
    )
    return _call(args, "AcceptEscalation", req)


def _answer(args: argparse.Namespace) -> int:
    req = esc.AnswerEscalationRequest(
        tenant_id=args.tenant, agent_id=args.agent, escalation_id=args.escalation_id, answer=args.text,
        layer=args.layer,
    )  # fmt: skip
    return _call(args, "AnswerEscalation", req)


def _decline(args: argparse.Namespace) -> int:
    req = esc.DeclineEscalationRequest(
        tenant_id=args.tenant, agent_id=args.agent, escalation_id=args.escalation_id, reason=args.reason
    )
    return _call(args, "DeclineEscalation", req)


def offer_accepted(channel: grpc.Channel, d: ans.AnswerDecision, tenant: str, user: str, **call: Any) -> str:
    """Accept the decision's offer; the line to show (the new state, or the error)."""
    stub = escalation_service_pb2_grpc.EscalationServiceStub(channel)
    req = esc.AcceptEscalationRequest(tenant_id=tenant, user_id=user, escalation_id=d.escalation_id)
    try:
        reply = stub.AcceptEscalation(req, **call)
    except grpc.RpcError as exc:
        from sidecar.cli import _describe_error

        return _describe_error(exc)
    return f"[path {_LETTER[reply.path]}: escalation {reply.escalation.id} is waiting for the creator]"


def show_decision(
    args: argparse.Namespace, channel: grpc.Channel, d: ans.AnswerDecision, metadata: Any
) -> None:
    """`sidecar chat`: the answer policy's path; an escalation offer is accepted with --accept, or when
    the user at the terminal says yes."""
    sys.stderr.write(describe(d) + "\n")
    if not d.escalation_id:
        return
    if not args.accept:
        if not sys.stdin.isatty():
            return
        sys.stderr.write("Send this message to the creator? [y/N] ")
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return
    call = {"timeout": args.timeout, "metadata": metadata}
    sys.stderr.write(offer_accepted(channel, d, args.tenant, args.user, **call) + "\n")
