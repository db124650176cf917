# nbdev 2's template setup.py, minus `pkg_resources` (gone in setuptools >= 82).
from configparser import ConfigParser
import setuptools, shlex

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

cfg_keys = 'version description keywords author author_email'.split()
expected = cfg_keys + "lib_name user branch license status min_python audience language".split()
for o in expected: assert o in cfg, "missing expected setting: {}".format(o)
setup_cfg = {o:cfg[o] for o in cfg_keys}

licenses = {  # settings.ini `license`: (name, classifier, SPDX expression)
    'apache2': ('Apache Software License 2.0','OSI Approved :: Apache Software License', 'Apache-2.0'),
    'mit': ('MIT License', 'OSI Approved :: MIT License', 'MIT'),
}
statuses = [ '1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive' ]
py_versions = '3.10 3.11 3.12 3.13'.split()

requirements = shlex.split(cfg.get('requirements', ''))
if cfg.get('pip_requirements'): requirements += shlex.split(cfg.get('pip_requirements', ''))
min_python = cfg['min_python']
lic = licenses.get(cfg['license'].lower(), (cfg['license'], None, None))
# setuptools >= 77 (PEP 639) warns "License classifiers are deprecated": give it the SPDX expression instead
spdx = lic[2] if int(setuptools.__version__.split('.')[0]) >= 77 else None
license_meta = {'license_expression': spdx} if spdx else {'license': lic[0]}
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
lab_requirements = ['jupyterlab>=4']  # `make lab`; in dev too (+~10 s install): tests/test_lab.py runs in `make test`
app_requirements = shlex.split(cfg.get('app_requirements', ''))  # `blip2-lora app` (Gradio); in dev too: tests/test_app.py runs in `make test`

setuptools.setup(
    name = cfg['lib_name'],
    **license_meta,
    classifiers = [
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
    ] + ['Programming Language :: Python :: '+o for o in py_versions[py_versions.index(min_python):]] + (['License :: ' + lic[1] ] if lic[1] and not spdx else []),
    url = cfg['git_url'],
    # blip2_lora/assets has no __init__.py but is importable (namespace package): list it, or setuptools warns
    # "Package 'blip2_lora.assets' is absent from the `packages` configuration" (MANIFEST.in ships it in the sdist)
    packages = setuptools.find_packages(include=['blip2_lora', 'blip2_lora.*']) + ['blip2_lora.assets'],
    include_package_data = True,
    package_data = {'blip2_lora.assets': ['*', '*/*', '*/*/*']},
    install_requires = requirements,
    extras_require={ 'dev': dev_requirements + lab_requirements + app_requirements, 'lab': lab_requirements, 'app': app_requirements },
    dependency_links = cfg.get('dep_links','').split(),
    python_requires  = '>=' + cfg['min_python'],
    long_description = open('README.md', encoding='utf-8').read(),
    long_description_content_type = 'text/markdown',
    zip_safe = False,
    entry_points = {
        'console_scripts': cfg.get('console_scripts','').split(),
        'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d']
    },
    **setup_cfg)
