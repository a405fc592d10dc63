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
