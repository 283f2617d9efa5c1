#!/usr/bin/env python3
"""Converts τ²-bench's retail and airline tasks into benign trajectories for
crates/bench/data/trajectories.jsonl.

Input (an unpacked wheel from PyPI, see README.md):
  --tau2  inspect_evals-0.26.0 (MIT; τ²-bench data © 2025 Sierra Research, MIT):
          the directory `inspect_evals/tau2`, of which this reads
          data/domains/retail/tasks.json and data/domains/airline/tasks.json

Each task's ground-truth action list (`evaluation_criteria.actions`: the tool calls a
correct customer-service agent makes) becomes one benign trajectory, one step per
action, in the order given. Tasks whose list is empty (the correct agent refuses or
only answers) have no tool call to replay and are left out; no step is invented.

Each action becomes a step {intent, resource, class, dest, gov, t} by the table in
MAPPING below, the one a gateway operator would write from the tool's name and
arguments: intent is the tool's name; resource the record acted on; destinations
the payment methods money goes to or comes from when the call names one (a refund,
an exchange's or a change's difference, a booking's charge) and the customer a
travel certificate is issued to. It never looks at anything but the action.

Output lines are appended in task order to stdout (or --out), sorted keys, one JSON
object a line, the same format `convert.py` writes. Deterministic: no clock, no
randomness; the split is the SHA-256 of the trajectory id (3 in 5 train), the rule
`convert.py` applies to BFCL.
"""
import argparse, hashlib, json, os, sys


def klass(resource):
    """Resource class, by the table in README.md: customer records are restricted,
    orders and reservations (an airline's orders) confidential, anything else
    (catalogue, flight schedules, a calculator, the hand-off queue) internal."""
    if resource.startswith("customer:"):
        return "prod/data/restricted"
    if resource.startswith(("orders:", "reservation:")):
        return "prod/data/confidential"
    return "dev/data/internal"


def pay(method):
    """A payment method as a destination: `account:credit_card_9513926`."""
    return f"account:{method}"


# tool name -> (resource from the arguments, destinations from the arguments)
MAPPING = {
    # retail: look-ups (reads)
    "find_user_id_by_name_zip": (lambda a: "customer:directory", lambda a: []),
    "find_user_id_by_email": (lambda a: "customer:directory", lambda a: []),
    "get_user_details": (lambda a: f"customer:{a['user_id']}", lambda a: []),
    "get_order_details": (lambda a: f"orders:{a['order_id']}", lambda a: []),
    "get_product_details": (lambda a: f"products:{a['product_id']}", lambda a: []),
    "list_all_product_types": (lambda a: "products:catalogue", lambda a: []),
    # retail: changes to an order; money moves to or from the payment method named
    "return_delivered_order_items": (lambda a: f"orders:{a['order_id']}", lambda a: [pay(a["payment_method_id"])]),
    "exchange_delivered_order_items": (lambda a: f"orders:{a['order_id']}", lambda a: [pay(a["payment_method_id"])]),
    "modify_pending_order_items": (lambda a: f"orders:{a['order_id']}", lambda a: [pay(a["payment_method_id"])]),
    "modify_pending_order_payment": (lambda a: f"orders:{a['order_id']}", lambda a: [pay(a["payment_method_id"])]),
    # a cancellation refunds the original payment, which the call does not name
    "cancel_pending_order": (lambda a: f"orders:{a['order_id']}", lambda a: []),
    # an address is where goods go, not data or money: not a destination
    "modify_pending_order_address": (lambda a: f"orders:{a['order_id']}", lambda a: []),
    "modify_user_address": (lambda a: f"customer:{a['user_id']}", lambda a: []),
    # airline: look-ups (reads)
    "get_reservation_details": (lambda a: f"reservation:{a['reservation_id']}", lambda a: []),
    "search_direct_flight": (lambda a: f"flights:{a['origin']}-{a['destination']}", lambda a: []),
    "search_onestop_flight": (lambda a: f"flights:{a['origin']}-{a['destination']}", lambda a: []),
    "list_all_airports": (lambda a: "flights:airports", lambda a: []),
    # airline: changes to a reservation
    "book_reservation": (
        lambda a: "reservation:new",
        lambda a: [pay(p["payment_id"]) for p in a.get("payment_methods", [])],
    ),
    "update_reservation_flights": (lambda a: f"reservation:{a['reservation_id']}", lambda a: [pay(a["payment_id"])]),
    "update_reservation_baggages": (lambda a: f"reservation:{a['reservation_id']}", lambda a: [pay(a["payment_id"])]),
    "update_reservation_passengers": (lambda a: f"reservation:{a['reservation_id']}", lambda a: []),
    "cancel_reservation": (lambda a: f"reservation:{a['reservation_id']}", lambda a: []),
    # a certificate is credited to the customer named
    "send_certificate": (lambda a: f"customer:{a['user_id']}", lambda a: [f"user:{a['user_id']}"]),
    # both domains
    "calculate": (lambda a: "tool:calculator", lambda a: []),
    "transfer_to_human_agents": (lambda a: "support:human-agents", lambda a: []),
}

STEP_SECONDS = 20  # one action per conversational turn, 20 s apart (BFCL's turns)


def convert(domain, tasks):
    out = []
    for task in tasks:
        actions = (task.get("evaluation_criteria") or {}).get("actions") or []
        if not actions:
            continue
        steps = []
        for i, action in enumerate(actions):
            name, args = action["name"], action.get("arguments") or {}
            if name not in MAPPING:
                sys.exit(f"{domain} task {task['id']}: no mapping for tool {name}")
            resource_of, dest_of = MAPPING[name]
            resource = resource_of(args)
            dest = list(dict.fromkeys(dest_of(args)))  # a booking paid twice from one card: one destination
            steps.append({"class": klass(resource), "dest": dest, "gov": False, "intent": name,
                          "resource": resource, "t": STEP_SECONDS * (i + 1)})
        tid = f"tau2_{domain}_{task['id']}"
        split = "train" if int(hashlib.sha256(tid.encode()).hexdigest(), 16) % 5 < 3 else "test"
        out.append({"id": tid, "label": "benign", "persona": f"tau2:{domain}", "source": f"tau2-bench-{domain}",
                    "split": split, "steps": steps, "tags": []})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tau2", required=True, help="the unpacked wheel's inspect_evals/tau2 directory")
    parser.add_argument("--out", help="file to append to (default: stdout)")
    args = parser.parse_args()
    rows = []
    for domain in ("retail", "airline"):
        with open(os.path.join(args.tau2, "data", "domains", domain, "tasks.json")) as f:
            rows += convert(domain, json.load(f))
    text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
