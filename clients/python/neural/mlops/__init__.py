"""neural-mlops: model registry, A/B testing, progressive delivery and audit.

Import the component you need, as the documentation shows::

    from neural.mlops.registry import ModelRegistry, ModelStage
    from neural.mlops.ab_testing import ABTestManager
    from neural.mlops.deployment import DeploymentManager
    from neural.mlops.audit import AuditLogger
"""

__version__ = "0.1.0"
