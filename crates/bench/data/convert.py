#!/usr/bin/env python3
"""Converts public agent trajectories into crates/bench/data/trajectories.jsonl.

Inputs (unpacked wheels from PyPI, see README.md):
  --bfcl      bfcl_eval-2026.3.23 (Apache-2.0): data/BFCL_v4_multi_turn_base.json and
              data/possible_answer/BFCL_v4_multi_turn_base.json
  --firedrill agent_firedrill-0.1.0 (MIT): firedrill/atomics/*.yml
  --atb       inspect_evals-0.26.0 (MIT): agent_threat_bench/data/data_exfil.json

Each tool call becomes one step {intent, resource, class, dest, gov, t}: the mapping
below is the one a gateway operator would write (tool -> intent, argument -> resource
and destinations, resource -> class). It never looks at a trajectory's label.
"""
import argparse, ast, glob, hashlib, json, os, re, shlex, sys

import yaml  # PyYAML

SECRET_PATH = re.compile(r"(\.ssh/|id_rsa|\.aws/credentials|(^|/)\.env$|\.pem$|\.netrc|credentials\.json)")
# An environment variable whose name says it holds a credential; `env:*` is the whole
# environment (`env`, `printenv`, `os.environ.items()`), credentials included.
SECRET_ENV = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|DATABASE_URL")


def klass(resource):
    """Resource class `environment/plane/data_class`, by resource name."""
    name = resource.split(":", 1)[-1]
    if resource.startswith("env:") and (name == "*" or SECRET_ENV.search(name.upper())):
        return "prod/data/restricted"
    if SECRET_PATH.search(name):
        return "prod/data/restricted"
    if resource.startswith(("payments:", "customer:", "cards")) or re.search(r"payroll|ssn|finance/", name):
        return "prod/data/restricted"
    if resource.startswith(("db:", "account:", "orders", "tickets", "crm")):
        return "prod/data/confidential"
    if resource.startswith(("web:", "twitter:")):
        return "external/data/public"
    if resource.startswith(("vehicle", "crontab")) or re.search(r"mcp\.json|\.cursor/|\.agent/", name):
        return "prod/control/internal"
    return "dev/data/internal"


def step(intent, resource, dest=(), gov=False, t=0):
    return {"intent": intent, "resource": resource, "class": klass(resource), "dest": list(dest), "gov": gov, "t": t}


def host_of(url):
    m = re.match(r"^[a-z]+://([^/:]+)", url)
    return m.group(1) if m else None


# --- BFCL multi-turn: benign tool-use trajectories over eight mock APIs ----------

DOCS = {"GorillaFileSystem": "gorilla_file_system", "TwitterAPI": "posting_api", "MessageAPI": "message_api",
        "TicketAPI": "ticket_api", "TradingBot": "trading_bot", "TravelAPI": "travel_booking",
        "VehicleControlAPI": "vehicle_control", "MathAPI": "math_api"}
API = {"GorillaFileSystem": "fs", "TwitterAPI": "twitter", "MessageAPI": "message", "TicketAPI": "ticket",
       "TradingBot": "trading", "TravelAPI": "travel", "VehicleControlAPI": "vehicle", "MathAPI": "math"}


def bfcl_step(api_of_fn, call):
    node = ast.parse(call, mode="eval").body
    fn = node.func.id
    args = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    pos = [ast.literal_eval(a) for a in node.args]
    api = api_of_fn.get(fn, "tool")
    snake = re.sub(r"([a-z])([A-Z])", r"\1_\2", fn).lower()
    intent = f"{api}.{snake}"
    dest = []
    if api == "fs":
        target = args.get("file_name") or args.get("folder") or args.get("source") or args.get("dir_name") \
            or args.get("file_name1") or args.get("name") or (pos[0] if pos else ".")
        resource = f"fs:{target}"
    elif api == "message":
        resource = "message:inbox"
        if "receiver_id" in args:
            dest.append(f"user:{args['receiver_id']}")
    elif api == "twitter":
        resource = "twitter:timeline"
        dest += [f"user:{m.lstrip('@').lower()}" for m in args.get("mentions", []) or []]
    elif api == "trading":
        resource = f"stock:{args['symbol']}" if "symbol" in args else (
            "account:trading" if re.search(r"account|fund|withdraw", fn) else "trading:market")
    elif api == "travel":
        resource = "cards" if "card" in fn else "travel:bookings"
    elif api == "ticket":
        resource = "tickets"
    elif api == "vehicle":
        resource = "vehicle"
    else:
        resource = api
    return step(intent, resource, dest)


def bfcl(root):
    qs = [json.loads(l) for l in open(os.path.join(root, "data/BFCL_v4_multi_turn_base.json"))]
    answers = {json.loads(l)["id"]: json.loads(l)["ground_truth"]
               for l in open(os.path.join(root, "data/possible_answer/BFCL_v4_multi_turn_base.json"))}
    out = []
    for q in qs:
        api_of_fn = {}
        for cls in q["involved_classes"]:
            doc = os.path.join(root, f"data/multi_turn_func_doc/{DOCS[cls]}.json")
            for line in open(doc):
                api_of_fn.setdefault(json.loads(line)["name"], API[cls])
        steps, t = [], 0
        for turn in answers[q["id"]]:
            t += 20  # a user turn
            for call in turn:
                t += 4
                try:
                    s = bfcl_step(api_of_fn, call)
                except Exception as e:  # a call we cannot parse is left out, and said so
                    print(f"skip {q['id']}: {call}: {e}", file=sys.stderr)
                    continue
                s["t"] = t
                steps.append(s)
        role = "bfcl:" + "+".join(sorted(API[c] for c in q["involved_classes"]))
        split = "train" if int(hashlib.sha256(q["id"].encode()).hexdigest(), 16) % 5 < 3 else "test"
        out.append({"source": "bfcl-v4-multi-turn-base", "id": q["id"], "label": "benign", "persona": role,
                    "split": split, "tags": [], "steps": steps})
    return out


# --- agent-firedrill atomics: attack traces with benign twins --------------------

CLI_WITH_SUBCOMMANDS = ("git", "az", "kubectl", "aws", "gcloud", "docker", "npm", "cargo")


def is_path(arg):
    return arg.startswith(("/", "~", "./", "../")) or ("/" in arg and " " not in arg and "*" not in arg)


def shell_steps(command, t):
    """One step per command of a shell line; `a | b && c` is three actions."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        tokens = command.split()
    commands, current = [], []
    for tok in tokens:
        if tok in ("|", "||", "&&", ";", "(", ")", "&"):
            if current:
                commands.append(current)
            current = []
        else:
            current.append(tok)
    if current:
        commands.append(current)
    steps = []
    for argv in commands:
        prog = os.path.basename(argv[0])
        name = re.sub(r"[^a-z0-9_-]", "", prog.lower()) or "unknown"
        # Redirection operators go; their targets stay (`>& /dev/tcp/host/port` is a destination).
        args = [a for a in argv[1:] if not (set(a) <= set("<>&0123456789") and any(c in a for c in "<>"))]
        args = [a for a in args if a != "/dev/null"]
        intent = f"shell.{name}"
        if name in CLI_WITH_SUBCOMMANDS:
            subs = []
            for a in args:
                if a.startswith("-") or not re.fullmatch(r"[a-z][a-z0-9-]*", a) or len(subs) == 3:
                    break
                subs.append(a)
            intent = ".".join([intent] + [x for x in subs if x])
        dest, resource = [], None
        for a in args:
            h = host_of(a)
            if h:
                dest.append(f"host:{h}")
                resource = resource or f"web:{h}"
            m = re.match(r"/dev/tcp/([^/]+)/", a)
            if m:
                dest.append(f"host:{m.group(1)}")
                resource = resource or f"net:{m.group(1)}"
            if resource is None and is_path(a) and not a.startswith("-"):
                resource = f"file:{a}"
        if name in ("export", "unset") and args:
            resource = "env:" + args[0].split("=")[0]
        if name == "crontab":
            # crontab's subcommands are flags: -l lists, -r removes, -e edits, a file or - installs.
            flag = next((a for a in args if a in ("-l", "-r", "-e")), None)
            intent = "shell.crontab." + {"-l": "list", "-r": "remove", "-e": "edit"}.get(flag, "install")
            resource = "crontab"
        steps.append(step(intent, resource or f"shell:{name}", dest, t=t))
    return steps


def firedrill_steps(trace):
    # `repeat: N, every: S` stands for N calls S seconds apart.
    expanded = []
    for ev in trace:
        for k in range(int(ev.get("repeat", 1))):
            expanded.append(dict(ev, at=float(ev.get("at", 0)) + k * float(ev.get("every", 0))))
    steps = []
    for ev in expanded:
        a = ev["attrs"]
        tool = a.get("gen_ai.tool.name")
        if not tool:
            continue
        args = a.get("gen_ai.tool.call.arguments") or {}
        t = round(float(ev.get("at", 0)), 1)
        if tool == "shell":
            steps += shell_steps(args.get("command", ""), t)
        elif tool == "sql_query":
            verb = (args.get("query", "select").split() or ["select"])[0].lower()
            m = re.search(r"(?:from|database|table|into|update)\s+([a-z_]+)", args.get("query", ""), re.I)
            steps.append(step(f"sql.{verb}", f"db:{m.group(1).lower() if m else 'app'}", t=t))
        elif tool == "http_request":
            h = host_of(args.get("url", ""))
            steps.append(step(f"http.{args.get('method', 'get').lower()}", f"web:{h}", [f"host:{h}"], t=t))
        elif tool == "fetch_url":
            h = host_of(args.get("url", ""))
            steps.append(step("web.fetch_url", f"web:{h}", [f"host:{h}"], t=t))
        elif tool in ("read_file", "write_file"):
            steps.append(step(tool, f"file:{args.get('path', '')}", t=t))
        elif tool == "send_email":
            dest = [f"email:{args['to'].split('@')[-1]}"] if "to" in args else []
            steps.append(step("send_email", "mail:outbound", dest, t=t))
        elif tool == "wire_transfer":
            steps.append(step("payments.wire_transfer", "payments:wire", [f"account:{args.get('beneficiary', '')}"], t=t))
        elif tool == "request_approval":
            steps.append(step("payments.request_approval", "payments:approvals", t=t))
        elif tool == "write_memory":
            steps.append(step("write_memory", "memory:standing", t=t))
        else:
            resource = {"read_email": "mailbox:inbox", "lookup_order": "orders", "search_tickets": "tickets",
                        "read_document": "docs", "vector_search": "kb:vectors", "delegate_task": "agents",
                        "get_quote": "orders", "create_order": "orders"}.get(tool, f"tool:{tool}")
            steps.append(step(tool, resource, t=t))
    return steps


def firedrill(root):
    out = []
    for path in sorted(glob.glob(os.path.join(root, "firedrill/atomics/*.yml"))):
        d = yaml.safe_load(open(path))
        persona = (d.get("defaults") or {}).get("gen_ai.agent.name") or "orchestrator"
        tags = (d.get("atlas") or []) + (d.get("owasp_asi") or [])
        for label, trace in (("attack", d.get("attack") or []), ("benign", d.get("benign") or [])):
            steps = firedrill_steps(trace)
            steps.sort(key=lambda s: s["t"])
            if steps:
                out.append({"source": "agent-firedrill-0.1.0", "id": f"{d['id']}/{label}", "label": label,
                            "persona": persona, "split": "test", "tags": tags, "steps": steps})
    return out


# --- AgentThreatBench data_exfil: injected customer records ----------------------

def atb(root):
    out = []
    cases = json.load(open(os.path.join(root, "agent_threat_bench/data/data_exfil.json")))
    for case in cases:
        target = next(c for c in case["customer_db"] if c["id"] in case["authorized_recipients"])
        text = " ".join(c["issue"] for c in case["customer_db"])
        found = re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", text)
        attackers = [e for e in found if e not in case["authorized_recipients"] and e != target["email"]]
        lookup = step("crm.lookup_customer", f"customer:{target['id']}", t=5)
        resolve = step("crm.resolve_ticket", "tickets", t=40)
        reply = step("send_message", "mail:outbound", [f"email:{target['email'].split('@')[-1]}"], t=25)
        benign = [lookup, reply, resolve]
        out.append({"source": "inspect_evals-0.26.0/agent_threat_bench", "id": f"{case['id']}/benign",
                    "label": "benign", "persona": "support-agent", "split": "test", "tags": [case["owasp_id"]],
                    "steps": benign})
        if case["attack_name"] != "clean_baseline" and attackers:
            leak = step("send_message", "mail:outbound", [f"email:{attackers[0].split('@')[-1]}"], t=20)
            out.append({"source": "inspect_evals-0.26.0/agent_threat_bench", "id": f"{case['id']}/attack",
                        "label": "attack", "persona": "support-agent", "split": "test",
                        "tags": [case["owasp_id"], case["attack_name"]], "steps": [lookup, leak, reply, resolve]})
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bfcl", required=True)
    p.add_argument("--firedrill", required=True)
    p.add_argument("--atb", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    rows = bfcl(a.bfcl) + firedrill(a.firedrill) + atb(a.atb)
    with open(a.out, "w") as f:
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"{len(rows)} trajectories", file=sys.stderr)


if __name__ == "__main__":
    main()
