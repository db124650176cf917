"Shared test set-up: one torch thread per worker (2 cores, 2 xdist workers), a private model cache."
import os
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import torch
torch.set_num_threads(1)
