"""A BERT-style encoder run in parts: the frozen lower layers, then the trainable top layers.

``FineTunedTransformer(train_layers=k)`` computes the embeddings and the lower
``n_layers - k`` layers once per text (``lower_states``, cached by ``frozen_states``) and
runs only the top k layers on those states (``top_states``). The split is exact: a
layer's output at real tokens does not depend on what padding positions hold (their keys
are masked out of attention), so states stored without padding and re-padded per batch
give the same result as one pass of the whole model.

When only the first token's final state is read (CLS pooling, ALVIN's f_enc), the last
layer is evaluated at that position alone (``cls_layer``): keys and values are projected
for every token, but the query, attention output, feed-forward block and layer norms only
for CLS. The result is the same vector the full layer gives at CLS; for MiniLM it is about
a sixth of the last layer's work.

Any encoder that ``AutoModel`` loads with the BERT module layout works (BERT, RoBERTa,
ELECTRA, MiniLM...): ``embeddings`` and ``encoder.layer[i]`` with ``attention.self``
(``query``, ``key``, ``value``, ``dropout``), ``attention.output``, ``intermediate``, ``output``.
"""

from __future__ import annotations

import torch
from torch.nn import functional

from anchoral.errors import ValidationError

LAYER_PARTS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.self.dropout",
               "attention.output", "intermediate", "output")


def check_layered(encoder) -> int:
    """The number of transformer layers of a BERT-layout ``encoder``, or a ValidationError."""
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if getattr(encoder, "embeddings", None) is None or layers is None or len(layers) == 0:
        raise ValidationError(
            f"train_layers needs a BERT-style encoder (embeddings + encoder.layer); {type(encoder).__name__} is not "
            "one: use train_layers=None (full fine-tuning)")
    for part in LAYER_PARTS:
        try:
            layers[0].get_submodule(part)
        except AttributeError:
            raise ValidationError(
                f"train_layers needs BERT-style layers; {type(layers[0]).__name__} has no {part}: "
                "use train_layers=None (full fine-tuning)") from None
    if getattr(encoder.config, "position_embedding_type", "absolute") != "absolute" or encoder.config.is_decoder:
        raise ValidationError("train_layers needs an encoder with absolute position embeddings and bidirectional "
                              "attention; use train_layers=None (full fine-tuning)")
    return len(layers)


def layer_mask(encoder, hidden: torch.Tensor, mask: torch.Tensor):
    """The attention mask the encoder's own forward pass hands its layers, for padding ``mask``."""
    try:
        from transformers.masking_utils import create_bidirectional_mask
    except ImportError:  # transformers 4.x: the additive (batch, 1, 1, length) mask
        return encoder.get_extended_attention_mask(mask, mask.shape, dtype=hidden.dtype)
    return create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden, attention_mask=mask)


def _run(layer, hidden: torch.Tensor, attention_mask) -> torch.Tensor:
    output = layer(hidden, attention_mask)
    return output[0] if isinstance(output, tuple) else output


def lower_states(encoder, ids: torch.Tensor, mask: torch.Tensor, boundary: int) -> torch.Tensor:
    """Token states after the embeddings and the first ``boundary`` layers, shape (batch, length, hidden)."""
    hidden = encoder.embeddings(input_ids=ids)
    attention_mask = layer_mask(encoder, hidden, mask)
    for layer in encoder.encoder.layer[:boundary]:
        hidden = _run(layer, hidden, attention_mask)
    return hidden


def top_states(encoder, hidden: torch.Tensor, mask: torch.Tensor, boundary: int, *, cls_only: bool) -> torch.Tensor:
    """Run layers ``boundary`` and up on ``hidden``: the final token states, (batch, length, hidden),
    or with ``cls_only`` the final state of the first token alone, (batch, 1, hidden)."""
    layers = encoder.encoder.layer[boundary:]
    if len(layers) == 0:
        return hidden[:, :1] if cls_only else hidden
    attention_mask = layer_mask(encoder, hidden, mask) if len(layers) > 1 or not cls_only else None
    for layer in layers[:-1]:
        hidden = _run(layer, hidden, attention_mask)
    if cls_only:
        return cls_layer(layers[-1], hidden, mask)
    return _run(layers[-1], hidden, attention_mask)


def cls_layer(layer, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One BERT layer's output at the first position only, shape (batch, 1, hidden).

    Attention as in Vaswani et al. (2017) §3.2: the CLS query against every real token's key
    (padding masked out), softmax, attention dropout in training, weighted sum of values;
    then the layer's own output projection + residual + layer norm, and its feed-forward block.
    """
    attention = layer.attention.self
    batch, length, _ = hidden.shape
    heads, width = attention.num_attention_heads, attention.attention_head_size

    def split_heads(states: torch.Tensor) -> torch.Tensor:
        return states.view(batch, states.shape[1], heads, width).transpose(1, 2)

    first = hidden[:, :1]
    context = functional.scaled_dot_product_attention(
        split_heads(attention.query(first)), split_heads(attention.key(hidden)), split_heads(attention.value(hidden)),
        attn_mask=mask.bool()[:, None, None, :],
        dropout_p=attention.dropout.p if attention.training else 0.0,
        scale=getattr(attention, "scaling", width ** -0.5),
    )
    attended = layer.attention.output(context.transpose(1, 2).reshape(batch, 1, heads * width), first)
    return layer.output(layer.intermediate(attended), attended)
