"""Writes the `.pth` seeds of the fuzz corpus with PyTorch itself: a module's state_dict (OrderedDict with
_metadata, BatchNorm's int64 counter) in the zip and the legacy format, a dict of Parameters, and tensors that
share one storage at offsets. Run from fuzz/corpus: python3 make_pth_seeds.py"""
import torch

torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.BatchNorm2d(2))
state = net.state_dict()
torch.save(state, "pth/state-dict.pth")
torch.save(state, "pth/state-dict-legacy.pth", _use_new_zipfile_serialization=False)
torch.save({"w": torch.nn.Parameter(torch.randn(2, 2)), "h": torch.randn(3).half()}, "pth/parameters.pth")
base = torch.arange(12, dtype=torch.float64)
torch.save({"state_dict": {"a": base[2:5], "b": base[4:12].view(2, 4)}}, "pth/shared-storage-legacy.pth", _use_new_zipfile_serialization=False)
