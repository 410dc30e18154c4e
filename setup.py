from setuptools import find_packages, setup

setup(
    name='pastrun',
    version='0.1.0',
    description='Composer algorithms that reuse the checkpoints and by-products of past training runs',
    packages=find_packages(include=['algorithms', 'algorithms.*', 'recipes', 'recipes.*']),
    python_requires='>=3.10',
    install_requires=[
        'mosaicml[streaming]==0.32.1',
        'mosaicml-streaming==0.13.0',
        'torch==2.7.0',
        'torchvision==0.22.0',
        'boto3',
        'pyyaml',
        'omegaconf',
        'tqdm',
        'matplotlib',
        'scipy>=1.15',  # the report: stats.ttest_ind(...).confidence_interval, stats.bootstrap(rng=), isotonic fit
    ],
    extras_require={
        'dev': ['pytest', 'moto[server]', 'scikit-learn', 'ruff', 'hypothesis==6.131.0'],
        # Composer's own tracker extras at its pins: TensorBoard, MLflow, Weights & Biases (loggers.*); MLflow 2.22's
        # SQLite/database store fails to import with SQLAlchemy 2.1 (FallbackAsyncAdaptedQueuePool is gone)
        'tracking': ['mosaicml[tensorboard,mlflow,wandb]==0.32.1', 'sqlalchemy<2.1'],
        # Sweeps on a Ray cluster (launcher: ray) and its EC2 launcher (ray up). Install it with the project, in one
        # resolve: ray[default] alone, added afterwards, upgrades packaging past mosaicml 0.32.1's packaging<25.1
        'cluster': ['ray[default]==2.60.0'],
    },
)
