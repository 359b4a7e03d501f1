"""`sfx-search tag`: zero-shot and trained tagging, export, training, evaluation and review.

Parses, calls `search.tagging`, reports: data (JSON with --json, CSV) on stdout, summaries
and progress on stderr.
"""

from __future__ import annotations

import csv
import json
import sys

import click

from indexer.options import index_options, model_options, settings_from, user_errors
from indexer.config import UserError



def _library(ctx, index_dir, db_url, model, device, precision):
    from .query import Library

    parent = (ctx.find_object(dict) or {}) if ctx else {}
    settings = settings_from(
        index_dir or parent.get("index_dir"), db_url or parent.get("db_url"), model or parent.get("model"),
        device if device != "auto" else parent.get("device", "auto"),
        precision if precision != "auto" else parent.get("precision", "auto"),
    )
    return Library.from_settings(settings)


def _print_report(rep, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rep.as_json(), indent=2))
        return
    tagged = rep.files if rep.tagged_files is None else rep.tagged_files
    click.echo(
        f"tagged {tagged} of {rep.files} files ({rep.chunks} chunks) with {rep.labels} labels: {rep.tags} tags "
        f"in set '{rep.set_name}' ({rep.source}, {rep.mode}, agg {rep.agg}) in {rep.seconds:.1f} s"
    )
    if tagged < rep.files:
        click.echo(f"  {rep.files - tagged} files got no tag: no label reached --threshold {rep.threshold}", err=True)
    for label, n in list(rep.label_counts.items())[:15]:
        click.echo(f"  {n:>7}  {label}")


@click.group(invoke_without_command=True)
@click.option("--labels", metavar='FILE|"a,b,c"', help="Labels file (one per line, 'label: description') or a list.")
@click.option("--taxonomy", type=click.Choice(["ucs"]), help="Tag against the 752 UCS categories (stores the CatID).")
@click.option("--prompt", "prompts", multiple=True, metavar="TEMPLATE|FILE",
              help='Prompt template with {} (repeat to ensemble) or a file of them [default: data/prompts/default.txt].')
@click.option("--top-k", type=int, help="Keep the K best labels per file [default: 1 exclusive, 3 multi-label].")
@click.option("--threshold", type=float, help="Keep labels scoring at least T (cosine, or probability with --exclusive).")
@click.option("--exclusive", is_flag=True, help="Labels are mutually exclusive: softmax with the model's logit scale.")
@click.option("--agg", type=click.Choice(["max", "mean"]), default="max", show_default=True,
              help="Per-file score over its chunks: best moment (max) or whole file (mean).")
@click.option("--name", "set_name", metavar="SET", help="Tag set name; rerunning a set replaces it [default: labels/head name].")
@click.option("--head", metavar="HEAD", help="Tag with a trained head instead of zero-shot.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@index_options
@model_options
@click.pass_context
@user_errors
def tag(ctx, labels, taxonomy, prompts, top_k, threshold, exclusive, agg, set_name, head, as_json,
        index_dir, db_url, model, device, precision):
    """Tag every indexed file against a label set (zero-shot) or with a trained head.

    Zero-shot uses the stored vectors only (no audio model call). Tags are stored as a named
    set; search them with `sfx-search "TEXT" --tag LABEL`.

    \b
    Examples:
      sfx-search tag --labels "sword clang,metal impact,footsteps on stone" --name combat
      sfx-search tag --labels data/labels/example.txt --threshold 0.3
      sfx-search tag --taxonomy ucs --exclusive --top-k 3 --name ucs
      sfx-search tag --head my-folders
      sfx-search tag list
    """
    ctx.obj = dict(index_dir=index_dir, db_url=db_url, model=model, device=device, precision=precision)
    if ctx.invoked_subcommand is not None:
        return
    if labels is not None and not labels.strip(" ,\n\t"):
        raise UserError('--labels is empty; give a labels file or a list like --labels "rain,wind,thunder"')
    if not (labels or taxonomy or head):
        click.echo(ctx.get_help())
        return
    from .tagging import label_set, load_templates, tag_library, tag_with_head

    with _library(None, index_dir, db_url, model, device, precision) as lib:
        if head:
            rep = tag_with_head(lib, head, set_name=set_name, top_k=top_k, threshold=threshold)
        else:
            labs = label_set(labels, taxonomy)
            name = set_name or (taxonomy or "labels")
            rep = tag_library(lib, labs, set_name=name, templates=load_templates(prompts), agg=agg,
                              exclusive=exclusive, top_k=top_k, threshold=threshold, progress=True)
    _print_report(rep, as_json)


@tag.command("list")
@click.option("--name", "set_name", metavar="SET", help="Label counts of this set.")
@click.option("--json", "as_json", is_flag=True, help="JSON: sets, heads, and labels with --name.")
@index_options
@click.pass_context
@user_errors
def list_(ctx, set_name, as_json, index_dir, db_url):
    """List tag sets and saved heads; with --name, the labels of a set and their file counts.

    \b
    Examples:
      sfx-search tag list
      sfx-search tag list --name ucs --json
    """
    from dataclasses import asdict

    with _library(ctx, index_dir, db_url, None, "auto", "auto") as lib:
        sets = lib.catalog.tag_sets()
        heads = lib.catalog.heads()
        labels = lib.catalog.label_counts(set_name) if set_name else []
    if as_json:
        data = {"sets": [asdict(s) for s in sets],
                "heads": [{"name": h.name, "created_at": h.created_at, "info": json.loads(h.info or "{}")} for h in heads]}
        if set_name:
            data["labels"] = [{"label": a, "cat_id": b, "files": n} for a, b, n in labels]
        click.echo(json.dumps(data, indent=2))
        return
    if not sets and not heads:
        click.echo("no tags yet; run e.g. sfx-search tag --labels \"rain,wind\" --name weather", err=True)
    for s in sets:
        click.echo(f"{s.set_name:<24} {s.source:<9} {s.labels:>5} labels {s.files:>8} files {s.tags:>9} tags")
    for h in heads:
        info = json.loads(h.info or "{}")
        acc = (info.get("head") or {}).get("top1")
        click.echo(f"head {h.name:<19} {len(info.get('class_names', [])):>5} classes  k-fold top-1 {acc}")
    for a, b, n in labels:
        click.echo(f"  {n:>7}  {a}" + (f"  [{b}]" if b else ""))


@tag.command()
@click.option("--csv", "csv_path", required=True, type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE",
              help="Write path, cat_id, label, score rows here ('-' for stdout).")
@click.option("--name", "set_name", metavar="SET", help="Only this set (user decisions always apply).")
@click.option("--label", metavar="LABEL", help="Only this label or CatID.")
@index_options
@click.pass_context
@user_errors
def export(ctx, csv_path, set_name, label, index_dir, db_url):
    """Export tags as CSV (path, cat_id, label, score) for spreadsheets and other tools.

    Rejected tags are left out; accepted ones are included with score 1.

    \b
    Examples:
      sfx-search tag export --csv tags.csv
      sfx-search tag export --csv - --name ucs --label DOORWood
    """
    with _library(ctx, index_dir, db_url, None, "auto", "auto") as lib:
        rows = lib.catalog.tagged_files(label, set_name=set_name, include_rejected=False)
    out = sys.stdout if csv_path == "-" else open(csv_path, "w", newline="", encoding="utf-8")
    try:
        w = csv.writer(out)
        w.writerow(["path", "cat_id", "label", "score"])
        for r in rows:
            w.writerow([r.path, r.cat_id or "", r.label, f"{r.score:.6f}"])
    finally:
        if out is not sys.stdout:
            out.close()
    if csv_path != "-":
        click.echo(f"wrote {len(rows)} tags to {csv_path}", err=True)


@tag.command()
@click.option("--from-folders", "folders", type=click.Path(exists=True, file_okay=False), metavar="ROOT",
              help="Class = the first folder below ROOT holding the file.")
@click.option("--from-ucs-names", "ucs_names", is_flag=True, help="Class = the UCS CatID of the file name.")
@click.option("--from-csv", "csv_file", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Rows path,label.")
@click.option("--from-decisions", "decided", metavar="LABEL",
              help="Yes/no answers given for LABEL (page label mode, tag review): a binary head.")
@click.option("--name", required=True, metavar="HEAD", help="Save the head under this name.")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2), help="k of the stratified k-fold.")
@click.option("--prompt", "prompts", multiple=True, metavar="TEMPLATE|FILE", help="Templates for the zero-shot baseline.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@index_options
@model_options
@click.pass_context
@user_errors
def train(ctx, folders, ucs_names, csv_file, decided, name, folds, prompts, as_json, index_dir, db_url, model, device,
          precision):
    """Train a head (logistic regression on stored file vectors) from labels the library has.

    Reports stratified k-fold accuracy and macro-F1, the zero-shot score on the same folds
    beside it, and saves the head in the index for `sfx-search tag --head HEAD`.

    \b
    Examples:
      sfx-search tag train --from-folders ~/SFX/Sorted --name sorted
      sfx-search tag train --from-ucs-names --name ucs-head
      sfx-search tag train --from-csv labels.csv --name mine --json
      sfx-search tag train --from-decisions DOORWood --name doors
    """
    from .tagging import labels_from_csv, labels_from_folders, labels_from_ucs_names, load_templates, train_head

    if sum(bool(x) for x in (folders, ucs_names, csv_file, decided)) != 1:
        raise UserError("give exactly one of --from-folders ROOT, --from-ucs-names, --from-csv FILE, --from-decisions LABEL")
    with _library(ctx, index_dir, db_url, model, device, precision) as lib:
        if decided:
            from .tagging.active import label_named, train_from_decisions

            rep = train_from_decisions(lib, label_named(decided), name=name)
            click.echo(json.dumps(rep, indent=2) if as_json else
                       f"head '{name}': {rep['yes']} yes, {rep['no']} no answers for '{rep['label']}'; "
                       f"{rep['folds']}-fold accuracy {rep['accuracy']:.3f}, macro-F1 {rep['macro_f1']:.3f}")
            click.echo(f"saved; tag the library with: sfx-search tag --head {name}", err=True)
            return
        if folders:
            y = labels_from_folders(lib.catalog, folders)
        elif ucs_names:
            y = labels_from_ucs_names(lib.catalog)
        else:
            y = labels_from_csv(lib.catalog, csv_file)
        rep = train_head(lib, y, name=name, templates=load_templates(prompts), folds=folds)
    if as_json:
        click.echo(json.dumps(rep, indent=2))
        return
    h, z = rep["head"], rep["zero_shot"]
    click.echo(f"head '{name}': {rep['files']} files, {rep['classes']} classes, {rep['folds']}-fold")
    click.echo(f"{'':<10} {'top1':>6} {'top5':>6} {'macroF1':>8}")
    click.echo(f"{'head':<10} {h['top1']:>6.3f} {h['top5']:>6.3f} {h['macro_f1']:>8.3f}")
    click.echo(f"{'zero-shot':<10} {z['top1']:>6.3f} {z['top5']:>6.3f} {z['macro_f1']:>8.3f}")
    click.echo(f"saved; tag the library with: sfx-search tag --head {name}", err=True)


@tag.command("eval")
@click.option("--from-folders", "folders", type=click.Path(exists=True, file_okay=False), metavar="ROOT",
              help="A labelled tree: ROOT/<class>/file.")
@click.option("--esc50", type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="The ESC-50 layout: DIR/meta/esc50.csv and DIR/audio/ (official folds for the head).")
@click.option("--prompt", "prompts", multiple=True, metavar="TEMPLATE|FILE", help="Prompt templates (repeat).")
@click.option("--snr", type=float, metavar="DB", help="Also evaluate with noise mixed in at this SNR.")
@click.option("--noise", type=click.Choice(["white", "pink"]), default="white", show_default=True)
@click.option("--agg", type=click.Choice(["max", "mean"]), default="max", show_default=True)
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2), help="k for folder trees.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the table.")
@click.option("--json-out", type=click.Path(dir_okay=False), metavar="FILE", help="Also write the JSON report here.")
@index_options
@model_options
@click.pass_context
@user_errors
def eval_(ctx, folders, esc50, prompts, snr, noise, agg, folds, as_json, json_out, index_dir, db_url, model,
          device, precision):
    """Measure the model on labelled audio: zero-shot top-1/top-5/macro-F1, a k-fold head,
    text-to-audio retrieval R@1/5/10 with class names as queries; --snr adds noise.

    Files the index holds unchanged use their stored vectors; others are embedded with the
    index's model without being added to it. Without an index, --model is used directly.

    \b
    Examples:
      sfx-search tag eval --esc50 ~/datasets/ESC-50-master
      sfx-search tag eval --from-folders ~/SFX/Sorted --snr 10 --noise pink --json-out report.json
    """
    from .tagging import Vectors, esc50_items, evaluate, folder_items, format_report, load_templates

    if bool(folders) == bool(esc50):
        raise UserError("give one of --from-folders ROOT or --esc50 DIR")
    items = folder_items(folders) if folders else esc50_items(esc50)
    try:
        lib = _library(ctx, index_dir, db_url, model, device, precision)
    except UserError:
        lib = None
        settings = settings_from(index_dir, db_url, model, device, precision)
    vectors = Vectors(lib) if lib is not None else Vectors(model=settings.model, device=device, precision=precision)
    try:
        rep = evaluate(items, vectors, templates=load_templates(prompts), agg=agg, snr=snr, noise=noise,
                       folds=folds, dataset=str(folders or esc50))
    finally:
        if lib is not None:
            lib.close()
    if json_out:
        with open(json_out, "w", encoding="utf-8") as f:
            json.dump(rep, f, indent=2)
    click.echo(json.dumps(rep, indent=2) if as_json else format_report(rep))


@tag.command()
@click.argument("label")
@click.option("--name", "set_name", metavar="SET", help="Only tags of this set.")
@click.option("-n", "n", default=50, show_default=True, type=click.IntRange(1), help="How many files to list.")
@click.option("--accept", multiple=True, metavar="PATH|RANK", help="Confirm LABEL on this file (repeatable).")
@click.option("--reject", multiple=True, metavar="PATH|RANK", help="Reject LABEL on this file (repeatable).")
@click.option("-i", "--interactive", is_flag=True, help="Ask y/n/s(kip)/q for each undecided file.")
@click.option("--json", "as_json", is_flag=True, help="JSON rows: rank, path, label, cat_id, score, decision.")
@index_options
@click.pass_context
@user_errors
def review(ctx, label, set_name, n, accept, reject, interactive, as_json, index_dir, db_url):
    """List the files tagged LABEL by score; record accepted / rejected decisions.

    Decisions are stored as user tags: they survive reruns and win over machine tags.

    \b
    Examples:
      sfx-search tag review "door creak"
      sfx-search tag review DOORWood --reject 3 --reject ~/SFX/door_02.wav --accept 1
      sfx-search tag review rain -i
    """
    from .tagging import decide, review_list

    with _library(ctx, index_dir, db_url, None, "auto", "auto") as lib:
        cat = lib.catalog
        listing = review_list(cat, label, set_name=set_name, limit=n)
        if accept or reject:
            for p in decide(cat, label, accept, accept=True, listing=listing):
                click.echo(f"accepted {label}: {p}", err=True)
            for p in decide(cat, label, reject, accept=False, listing=listing):
                click.echo(f"rejected {label}: {p}", err=True)
            return
        if interactive:
            for i, r in enumerate(listing, 1):
                if r.decision:
                    continue
                ans = click.prompt(f"{i:>3} {r.score:.3f} {r.path}  [y/n/s/q]", default="s",
                                   type=click.Choice(["y", "n", "s", "q"]), show_choices=False, err=True)
                if ans == "q":
                    break
                if ans in "yn":
                    decide(cat, label, [str(i)], accept=ans == "y", listing=listing)
            return
    if as_json:
        click.echo(json.dumps([{"rank": i, "path": r.path, "label": r.label, "cat_id": r.cat_id, "score": r.score,
                                "set": r.set_name, "decision": r.decision} for i, r in enumerate(listing, 1)], indent=2))
        return
    if not listing:
        click.echo(f"no file is tagged '{label}'; see 'sfx-search tag list'", err=True)
    for i, r in enumerate(listing, 1):
        mark = {"accepted": "+", "rejected": "x"}.get(r.decision or "", " ")
        click.echo(f"{i:>4} {mark} {r.score:7.3f}  {r.path}")
