// Marks functions that both the host compiler and nvcc's device pass compile.
#pragma once

#if defined(__CUDACC__)
#define DFSS_HOST_DEVICE __host__ __device__
#else
#define DFSS_HOST_DEVICE
#endif
