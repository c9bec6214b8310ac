// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Test double that calls back into the proxy when paid.
/// @notice `arm(target, data)` sets the call made from `receive` (once per
/// payment: a nested payment is simply accepted); a failing call's revert
/// data is bubbled up, so the payment fails with it.
contract ReentrantReceiver {
    address public target;
    bytes public data;
    uint256 public received;
    bool private inside;

    function arm(address t, bytes calldata d) external {
        target = t;
        data = d;
    }

    receive() external payable {
        if (target != address(0) && !inside) {
            inside = true;
            (bool ok, bytes memory ret) = target.call(data);
            inside = false;
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 32), mload(ret))
                }
            }
        }
        received += msg.value;
    }
}
