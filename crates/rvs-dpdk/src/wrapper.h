/* The DPDK API rvs binds. Keep this list tight: bindgen time grows with every header. */
#include <rte_config.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_prefetch.h>
#include <rte_flow.h>
#include <rte_thash.h>
#include <rte_pdump.h>
#include <rte_dev.h>
#include <rte_bus_vdev.h>
#include <rte_telemetry.h>

/* rte_errno is a thread-local variable, which bindgen cannot bind; read it through a function. */
static inline int rvs_rte_errno(void) { return rte_errno; }
