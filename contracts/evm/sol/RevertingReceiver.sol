// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Test double whose payments and calls revert until opened.
contract RevertingReceiver {
    bool public open;
    uint256 public value;
    uint256 public received;

    error Closed();

    function setOpen(bool o) external {
        open = o;
    }

    /// The call an action makes: records `v` and the value sent.
    function poke(uint256 v) external payable {
        if (!open) revert Closed();
        value = v;
        received += msg.value;
    }

    receive() external payable {
        if (!open) revert Closed();
        received += msg.value;
    }
}
