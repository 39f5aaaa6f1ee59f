"""The choices the config's keys offer, named once in a module without imports: the stages that
implement them and the config check (`w2vlens.validation`) both read them here, so that checking a
config loads neither torch nor scikit-learn."""

KMEANS_BACKENDS = ("auto", "faiss", "torch", "sklearn")  # cluster.estimator.backend
UMAP_BACKENDS = ("auto", "umap-learn", "cuml")  # reduce.projection.backend
PROJECTION_METRICS = ("euclidean", "cosine")  # reduce.projection.metric
NEIGHBOURS = ("auto", "exact", "approximate")  # reduce.projection.neighbours: how the kNN graph is searched
COMPUTE_DTYPES = ("float32", "bfloat16", "float16")  # extract.dtype, besides auto
STORAGE_DTYPES = ("float16", "float32")  # extract.storage_dtype, besides auto
BOOTSTRAP_UNITS = ("auto", "utterance", "speaker")  # paper.bootstrap_unit: what a resample draws
SCORES = ("ami", "homogeneity", "completeness")  # the paper's scores (Tables 1-3), in its order; `objective`
