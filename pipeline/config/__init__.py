"""The run configuration, validated once at this edge; the core trusts what it hands down.

load.py         Config (the root model), load_config, config_from_yaml, overrides and merging
sections.py     data, augment, model, regularization, training, diagnosis, tracking sections
search.py       the search and evaluate sections, and search-space files (ParamSpec)
constraints.py  the one vocabulary of bounds and the one translator of pydantic errors
safe_yaml.py    the one YAML loader for user text, bounded before expansion (load_yaml)
"""

from pipeline.config.constraints import explain_error
from pipeline.config.load import Config, config_from_yaml, load_config, parse_override, validate
from pipeline.config.search import EvaluateConfig, GateConfig, ParamSpec, SearchConfig, parse_space
from pipeline.config.sections import SourceConfig, eval_cadence

__all__ = ["Config", "EvaluateConfig", "GateConfig", "ParamSpec", "SearchConfig", "SourceConfig",
           "config_from_yaml", "eval_cadence", "explain_error", "load_config", "parse_override",
           "parse_space", "validate"]
