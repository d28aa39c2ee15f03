"""From the rows of the runs to medians, ratios and summaries."""

import math
import statistics

from .common import PEERS, fnum


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def median_record(rs):
    """The medians of one workload under one allocator, from its rows."""
    ok = [r for r in rs if r["status"] == "ok"]
    m = {"runs": len(rs), "ok": len(ok),
         "failures": sorted(set(r["status"] for r in rs if r["status"] != "ok"))}
    if ok:
        m["cost"] = statistics.median(float(r["cost_s"]) for r in ok)
        m["metric"] = statistics.median(float(r["metric_value"]) for r in ok)
        m["rss_mib"] = statistics.median(int(r["maxrss_kib"]) for r in ok) / 1024.0
        m["minflt"] = statistics.median(int(r["minflt"]) for r in ok)
        m["wall"] = statistics.median(float(r["wall_s"]) for r in ok)
        vals = sorted(float(r["metric_value"]) for r in ok)
        m["spread"] = (vals[0], vals[-1])
        ex = {}
        for r in ok:
            for tok in r["extra"].split():
                k, _, v = tok.partition("=")
                if fnum(v) is not None:
                    ex.setdefault(k, []).append(float(v))
        m["extra"] = {k: statistics.median(v) for k, v in ex.items()}
    return m


def medians(rows, wls, allocs):
    """(workload, allocator) -> median record."""
    return {(w.name, a): median_record([r for r in rows if r["workload"] == w.name and
                                        r["allocator"] == a])
            for w in wls for a in allocs}


def checksum_mismatch(rows, wls):
    """Workloads whose output checksum is not the same in every successful
    run: {workload: {checksum: [allocators]}}."""
    mismatch = {}
    for w in wls:
        checks = {}
        for r in rows:
            if r["workload"] == w.name and r["status"] == "ok" and r["check"]:
                checks.setdefault(r["check"], set()).add(r["allocator"])
        if len(checks) > 1:
            mismatch[w.name] = {k: sorted(v) for k, v in checks.items()}
    return mismatch


def peer_ratios(med, wls, allocs):
    """Each allocator's median cost over the best peer's, and its median
    peak RSS over mimalloc's: two dicts keyed by (workload, allocator)."""
    ratio, rss_ratio = {}, {}
    for w in wls:
        peer_costs = [med[(w.name, p)]["cost"] for p in PEERS if (w.name, p) in med and "cost" in med[(w.name, p)]]
        best = min(peer_costs) if peer_costs else None
        mi = med.get((w.name, "mimalloc"), {}).get("rss_mib")
        for a in allocs:
            m = med[(w.name, a)]
            if best and "cost" in m:
                ratio[(w.name, a)] = m["cost"] / best
            if mi and "rss_mib" in m:
                rss_ratio[(w.name, a)] = m["rss_mib"] / mi
    return ratio, rss_ratio


def same_round_ratios(rows, wls, alloc, against):
    """alloc's cost over the lowest cost of the allocators in against within
    the same round, median over the rounds: {workload: ratio}.  Less
    sensitive to drift between rounds than the ratio of medians."""
    paired = {}
    for w in wls:
        by_round = {}
        for r in rows:
            if r["workload"] == w.name and r["status"] == "ok":
                by_round.setdefault(r["round"], {})[r["allocator"]] = float(r["cost_s"])
        rs = []
        for costs in by_round.values():
            others = [costs[p] for p in against if p in costs]
            if alloc in costs and others:
                rs.append(costs[alloc] / min(others))
        if rs:
            paired[w.name] = statistics.median(rs)
    return paired


def mheap_summary(med, ratio, rss_ratio, wls, summ):
    """Adds to summ mheap's geometric means and worst cases against the
    peers, its page faults on large blocks and its fragmentation figures."""
    r = {w.name: ratio[(w.name, "mheap")] for w in wls if (w.name, "mheap") in ratio}
    if r:
        summ["time_geomean"] = geomean(r.values())
        worst = max(r, key=r.get)
        summ["time_max"] = (r[worst], worst)
        summ["time_ratios"] = r
    rr = {w.name: rss_ratio[(w.name, "mheap")] for w in wls if (w.name, "mheap") in rss_ratio}
    if rr:
        summ["rss_geomean"] = geomean(rr.values())
        worst = max(rr, key=rr.get)
        summ["rss_max"] = (rr[worst], worst)
        big = [v for k, v in rr.items() if med[(k, "mimalloc")]["rss_mib"] >= 16]
        if big:
            summ["rss_geomean_big"] = (geomean(big), len(big))
    lm, lg = med.get(("large", "mheap"), {}), med.get(("large", "glibc"), {})
    if "minflt" in lm and "minflt" in lg:
        summ["large_faults"] = (lm["minflt"], lg["minflt"])
    fr = med.get(("frag", "mheap"), {}).get("extra", {})
    if "rss_after_1s_mib" in fr:
        summ["frag"] = fr


def versus_extras(rows, med, wls, extras):
    """mheap against each extra allocator X: {X: {workload: {'time': median
    cost of mheap / of X, 'rss': the same for peak RSS, 'paired': mheap / X
    within a round, median over rounds}}}; a key is absent where either
    side has no successful run."""
    out = {}
    for x in extras:
        paired = same_round_ratios(rows, wls, "mheap", [x])
        per = {}
        for w in wls:
            m, e = med[(w.name, "mheap")], med[(w.name, x)]
            d = {}
            if m.get("cost") and e.get("cost"):
                d["time"] = m["cost"] / e["cost"]
            if m.get("rss_mib") and e.get("rss_mib"):
                d["rss"] = m["rss_mib"] / e["rss_mib"]
            if w.name in paired:
                d["paired"] = paired[w.name]
            per[w.name] = d
        out[x] = per
    return out


def analyse(rows, wls, allocs, extras=()):
    """Returns (medians, time ratios to the best peer, peak RSS ratios to
    mimalloc, checksum mismatches, summary).  extras: the allocators that
    are not peers but other builds to set mheap against; the summary's
    'versus' holds that comparison when mheap and any of them were run."""
    med = medians(rows, wls, allocs)
    mismatch = checksum_mismatch(rows, wls)
    ratio, rss_ratio = peer_ratios(med, wls, allocs)
    summ = {"paired": same_round_ratios(rows, wls, "mheap", PEERS)}
    if "mheap" in allocs:
        mheap_summary(med, ratio, rss_ratio, wls, summ)
        run_extras = [x for x in extras if x in allocs]
        if run_extras:
            summ["versus"] = versus_extras(rows, med, wls, run_extras)
    return med, ratio, rss_ratio, mismatch, summ
