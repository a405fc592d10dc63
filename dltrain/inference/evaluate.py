"""`dltrain evaluate`'s tables: a split's metrics per class and its confusion matrix (the scoring itself is
`runs.evaluation.evaluate_run`)."""

from __future__ import annotations


def metrics_table(metrics: dict):
    from rich.table import Table

    kappa = "".join(
        f", {label} {metrics[key]:.4f}"
        for key, label in (
            ("quadratic_weighted_kappa", "quadratic weighted kappa"),
            ("blended_quadratic_weighted_kappa", "both eyes blended"),
        )
        if key in metrics
    )
    table = Table(
        title=f"{metrics['split']}: accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f}{kappa} "
        f"({metrics['count']} samples)"
    )
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, scores in metrics["per_class"].items():
        table.add_row(
            name, f"{scores['precision']:.3f}", f"{scores['recall']:.3f}", f"{scores['f1']:.3f}", str(scores["support"])
        )
    return table


def confusion_table(metrics: dict):
    from rich.table import Table

    table = Table(title="confusion matrix (rows: true, columns: predicted)")
    table.add_column("")
    for index, _ in enumerate(metrics["classes"]):
        table.add_column(str(index), justify="right")
    for index, (name, row) in enumerate(zip(metrics["classes"], metrics["confusion_matrix"])):
        table.add_row(f"{index} {name}", *(str(value) for value in row))
    return table


def confused_table(metrics: dict):
    """The commonest mistakes, or None where there are none."""
    from rich.table import Table

    pairs = metrics.get("most_confused") or []
    if not pairs:
        return None
    table = Table(title="most confused (true read as predicted)")
    for column in ("true", "predicted", "count", "share of true"):
        table.add_column(column, justify="right" if column in ("count", "share of true") else "left")
    for pair in pairs:
        table.add_row(pair["true"], pair["predicted"], str(pair["count"]), f"{pair['share_of_true']:.1%}")
    return table


def screening_lines(metrics: dict) -> list[str]:
    """Referable disease (retina) as screening reports it: AUC, and sensitivity / specificity at each cut."""
    lines = []
    for prefix, label in (("referable", "referable (grade 2+)"), ("blended_referable", "both eyes blended")):
        if metrics.get(f"{prefix}_auc") is None:
            continue
        points = [
            f"at the grading cut points sensitivity {metrics[f'{prefix}_sensitivity']:.3f}, "
            f"specificity {metrics[f'{prefix}_specificity']:.3f}"
        ] + [
            f"at {point['target_sensitivity']:.0%} sensitivity specificity {point['specificity']:.3f}"
            for point in metrics.get(f"{prefix}_operating_points", [])
        ]
        lines.append(f"{label}: AUC {metrics[f'{prefix}_auc']:.4f}; " + "; ".join(points))
    return lines
