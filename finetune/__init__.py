"""Contrastive fine-tuning of CLIP on a collection's image-caption pairs.

`finetune.run.finetune` is the whole run as one call (data, split, training,
WiSE-FT, evaluation, model version); `finetune.compare.evaluate_version`
compares a version with its base on the held-out test split;
`finetune.registry` lists, promotes and exports versions.
"""
