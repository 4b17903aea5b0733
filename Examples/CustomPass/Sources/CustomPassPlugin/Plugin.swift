// The example's passes as a sofie pass plugin:
//   swift build --package-path Examples/CustomPass --product CustomPassPlugin
//   sofie compile model.onnx -o gen --load-pass-plugin .build/debug/libCustomPassPlugin.so \
//       --passes report-ops,collapse-double-relu,default
import CustomPasses
import SofieDriver

@_cdecl("sofie_plugin_init")
public func sofiePluginInit() {
    PassPlugin.export([collapseRelu, ReportOps()])
}
