# nbgrader's settings for your copy of the assignments (written by `nn-course build`).
# `nbgrader validate NN_topic/NN_topic.ipynb`, run in this folder, reads it: it prints every
# line of a test's message whole instead of cutting it at 87 characters (the Validate button
# in JupyterLab shows messages whole anyway).
c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)
c.Validator.width = 1000
