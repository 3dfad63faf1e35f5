"""Builds the compiled answer kernel (recsvc/fast/_kernel.pyx); everything else is in pyproject.toml."""
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize([Extension("recsvc.fast._kernel", ["recsvc/fast/_kernel.pyx"],
                                       extra_compile_args=["-O3"])],
                            compiler_directives={"language_level": 3}))
