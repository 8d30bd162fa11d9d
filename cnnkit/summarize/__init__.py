"""Per-layer summary of any ``torch.nn.Module``: shapes, parameters, MACs, receptive field, formulas."""

from cnnkit.summarize.collect import LayerRow, ModelSummary, summary

__all__ = ["LayerRow", "ModelSummary", "summary"]
