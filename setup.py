"""Builds the compiled answer kernel and per-call path (recsvc/fast/*.pyx); everything else is in pyproject.toml."""
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize([Extension(f"recsvc.fast.{name}", [f"recsvc/fast/{name}.pyx"], extra_compile_args=["-O3"])
                             for name in ("_kernel", "_rpc")],
                            compiler_directives={"language_level": 3}))
