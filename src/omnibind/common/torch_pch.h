// Precompiled for every target that uses libtorch (see cmake/OmnibindLayer.cmake).
// Only ATen's tensor core: the nn front end (torch/torch.h) is included where it is needed.
#pragma once
#include <ATen/ATen.h>
#include <string>
#include <vector>
#include <memory>
#include <stdexcept>
